//! Messages: what was said in a conversation, by whom, in which thought.

use crate::StoreError;
use crate::backend::{Db, Pools, in_tx, on_read, on_write};
use crate::store::{Store, begin_insert, parse_uuid};
use crate::tools::{ReplyRuns, insert_tool_runs};
use crate::usage::{ReplyUsage, insert_usage};
use clara_core::context::Turn;
use clara_core::{ConversationId, EventId, MessageId, Role, SessionId, ThoughtId, UserId};
use sqlx::QueryBuilder;

/// How a message ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    /// Said in full; part of the conversation's history.
    Complete,
    /// A reply cut short because a newer message cancelled its thought.
    Cancelled,
    /// A reply that failed (provider error); kept for the record, never replayed.
    Failed,
}

impl MessageStatus {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
        }
    }

    /// Parses [`MessageStatus::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "complete" => Some(Self::Complete),
            "cancelled" => Some(Self::Cancelled),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// A message to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMessage {
    /// Its id.
    pub id: MessageId,
    /// The conversation (must exist).
    pub conversation: ConversationId,
    /// The session it belongs to (must exist).
    pub session: SessionId,
    /// The thought it is part of (a user's burst, or the reply to it).
    pub thought: ThoughtId,
    /// The person who wrote it; `None` for Clara's and system messages.
    pub user: Option<UserId>,
    /// Who it is from.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// The platform event it came from; a second message with the same event in the
    /// same conversation is ignored.
    pub event_id: Option<EventId>,
    /// How it ended up.
    pub status: MessageStatus,
    /// When it was said, Unix ms.
    pub created_at_ms: i64,
    /// For Clara's reply: what it cost, stored in the same transaction.
    pub usage: Option<ReplyUsage>,
    /// For Clara's reply: the tool calls it made, in order, stored in the same
    /// transaction (empty for every other message, which then costs no write).
    pub tool_runs: Vec<clara_core::ToolRun>,
}

/// A stored message.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMessage {
    /// Its id.
    pub id: MessageId,
    /// The conversation.
    pub conversation: ConversationId,
    /// The session.
    pub session: SessionId,
    /// The thought it is part of.
    pub thought: ThoughtId,
    /// The person who wrote it; `None` for Clara's and system messages.
    pub user: Option<UserId>,
    /// Who it is from.
    pub role: Role,
    /// Its text.
    pub content: String,
    /// The platform event it came from.
    pub event_id: Option<EventId>,
    /// How it ended up.
    pub status: MessageStatus,
    /// When it was said, Unix ms.
    pub created_at_ms: i64,
}

impl Turn for StoredMessage {
    fn role(&self) -> Role {
        self.role
    }
    fn content(&self) -> &str {
        &self.content
    }
    fn at_ms(&self) -> i64 {
        self.created_at_ms
    }
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    conversation_id: String,
    session_id: String,
    thought_id: String,
    user_id: Option<String>,
    role: String,
    content: String,
    status: String,
    event_id: Option<String>,
    created_at_ms: i64,
}

impl TryFrom<MessageRow> for StoredMessage {
    type Error = StoreError;
    fn try_from(r: MessageRow) -> Result<Self, StoreError> {
        let role = Role::parse(&r.role).ok_or_else(|| {
            StoreError::invalid(format!("message {} has unknown role {:?}", r.id, r.role))
        })?;
        let status = MessageStatus::parse(&r.status).ok_or_else(|| {
            StoreError::invalid(format!(
                "message {} has unknown status {:?}",
                r.id, r.status
            ))
        })?;
        Ok(StoredMessage {
            id: MessageId(parse_uuid(&r.id, "messages.id")?),
            conversation: ConversationId(parse_uuid(
                &r.conversation_id,
                "messages.conversation_id",
            )?),
            session: SessionId(parse_uuid(&r.session_id, "messages.session_id")?),
            thought: ThoughtId(parse_uuid(&r.thought_id, "messages.thought_id")?),
            user: r
                .user_id
                .as_deref()
                .map(|u| parse_uuid(u, "messages.user_id").map(UserId))
                .transpose()?,
            role,
            content: r.content,
            event_id: r.event_id.map(EventId),
            status,
            created_at_ms: r.created_at_ms,
        })
    }
}

/// Rows per INSERT statement. Fixed-size chunks keep the number of distinct
/// statements (and so prepared-statement cache entries) small, and 64 × 10
/// parameters stays far below every SQLite build's parameter limit.
const ROWS_PER_STATEMENT: usize = 64;

/// Inserts messages in one transaction, ignoring those whose id or
/// (conversation, event) is already stored. The message writer commits its
/// batches through this too.
pub(crate) async fn insert_messages(
    pools: &Pools,
    db: &Db,
    messages: &[NewMessage],
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let err = |e| db.err(e);
    let mut tx = begin_insert(pools, db).await?;
    for chunk in messages.chunks(ROWS_PER_STATEMENT) {
        in_tx!(&mut tx, |c| {
            let mut insert = QueryBuilder::new(
                "INSERT INTO messages \
                 (id, conversation_id, session_id, thought_id, user_id, role, content, status, event_id, created_at_ms) ",
            );
            insert.push_values(chunk, |mut row, m| {
                row.push_bind(m.id.0.to_string())
                    .push_bind(m.conversation.0.to_string())
                    .push_bind(m.session.0.to_string())
                    .push_bind(m.thought.0.to_string())
                    .push_bind(m.user.map(|u| u.0.to_string()))
                    .push_bind(m.role.as_str())
                    .push_bind(m.content.clone())
                    .push_bind(m.status.as_str())
                    .push_bind(m.event_id.as_ref().map(|e| e.0.clone()))
                    .push_bind(m.created_at_ms);
            });
            // Redeliveries and retried batches are expected; they must not fail the rest.
            insert.push(" ON CONFLICT DO NOTHING");
            insert.build().execute(&mut *c).await.map(|_| ())
        }).map_err(err)?;
    }
    let usage = messages
        .iter()
        .filter_map(|m| m.usage.as_ref().map(|u| (m, u)));
    insert_usage(&mut tx, usage).await.map_err(err)?;
    let runs = messages.iter().map(|m| ReplyRuns {
        conversation: m.conversation,
        message: Some(m.id),
        thought: m.thought,
        runs: &m.tool_runs,
    });
    insert_tool_runs(&mut tx, runs).await.map_err(err)?;
    tx.commit().await.map_err(err)
}

impl Store {
    /// Stores messages in ONE transaction. A message whose (conversation, event id)
    /// or id is already stored is skipped, not an error.
    pub async fn append_messages(&self, messages: &[NewMessage]) -> Result<(), StoreError> {
        insert_messages(&self.pools, &self.db, messages).await
    }

    /// The conversation window, oldest first, complete messages only: every message
    /// with `created_at_ms >= since_ms`, but at least the newest `min_count` when
    /// they exist, and never more than the newest `max_count`.
    pub async fn recent_messages(
        &self,
        conversation: ConversationId,
        since_ms: i64,
        min_count: u32,
        max_count: u32,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let conversation_id = conversation.0.to_string();
        // Nothing from before a fresh start reaches the window, however few remain.
        let after_seq: i64 = on_read!(&self.pools, |pool| sqlx::query_scalar(
            "SELECT COALESCE(context_after_seq, 0) FROM conversations WHERE id = $1",
        )
        .bind(&conversation_id)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?
        .unwrap_or(0);
        let young: i64 = on_read!(&self.pools, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = $1 AND status = 'complete' AND created_at_ms >= $2 AND seq > $3",
        )
        .bind(&conversation_id)
        .bind(since_ms)
        .bind(after_seq)
        .fetch_one(pool)
        .await)
        .map_err(|e| self.err(e))?;
        // The young messages are the newest ones, so the window is a suffix whose
        // length is the young count clamped to [min_count, max_count].
        let take = young.max(i64::from(min_count)).min(i64::from(max_count));
        if take == 0 {
            return Ok(Vec::new());
        }
        let rows: Vec<MessageRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, conversation_id, session_id, thought_id, user_id, role, content, status, event_id, created_at_ms \
             FROM messages WHERE conversation_id = $1 AND status = 'complete' AND seq > $2 \
             ORDER BY created_at_ms DESC, seq DESC LIMIT $3",
        )
        .bind(&conversation_id)
        .bind(after_seq)
        .bind(take)
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .rev()
            .map(StoredMessage::try_from)
            .collect()
    }

    /// The complete messages of a session, oldest first.
    pub async fn session_messages(
        &self,
        session: SessionId,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows: Vec<MessageRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, conversation_id, session_id, thought_id, user_id, role, content, status, event_id, created_at_ms \
             FROM messages WHERE session_id = $1 AND status = 'complete' ORDER BY created_at_ms, seq",
        )
        .bind(session.0.to_string())
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(StoredMessage::try_from).collect()
    }

    /// Every message of a thought, whatever its status, oldest first.
    pub async fn thought_messages(
        &self,
        thought: ThoughtId,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let rows: Vec<MessageRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, conversation_id, session_id, thought_id, user_id, role, content, status, event_id, created_at_ms \
             FROM messages WHERE thought_id = $1 ORDER BY created_at_ms, seq",
        )
        .bind(thought.0.to_string())
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(StoredMessage::try_from).collect()
    }

    /// One message by id, whatever its status (a memory's history names the
    /// message it came from).
    pub async fn message(&self, id: MessageId) -> Result<Option<StoredMessage>, StoreError> {
        let row: Option<MessageRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT id, conversation_id, session_id, thought_id, user_id, role, content, status, event_id, created_at_ms \
             FROM messages WHERE id = $1",
        )
        .bind(id.0.to_string())
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(StoredMessage::try_from).transpose()
    }

    /// Moves the user messages of a cancelled thought into the thought that carries
    /// their text on; returns how many moved. Clara's partial reply stays with the
    /// cancelled thought.
    pub async fn reassign_thought(
        &self,
        from: ThoughtId,
        to: ThoughtId,
    ) -> Result<u64, StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "UPDATE messages SET thought_id = $1 WHERE thought_id = $2 AND role = 'user'",
        )
        .bind(to.0.to_string())
        .bind(from.0.to_string())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(done)
    }

    /// Whether a message from this platform event is stored in the conversation.
    pub async fn has_event(
        &self,
        conversation: ConversationId,
        event_id: &EventId,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = on_read!(&self.pools, |pool| sqlx::query_scalar(
            "SELECT CAST(1 AS BIGINT) FROM messages WHERE conversation_id = $1 AND event_id = $2 LIMIT 1",
        )
        .bind(conversation.0.to_string())
        .bind(&event_id.0)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(found.is_some())
    }

    /// How many messages (of any status) the conversation has.
    pub async fn count_messages(&self, conversation: ConversationId) -> Result<u64, StoreError> {
        let n: i64 = on_read!(&self.pools, |pool| sqlx::query_scalar(
            "SELECT COUNT(*) FROM messages WHERE conversation_id = $1"
        )
        .bind(conversation.0.to_string())
        .fetch_one(pool)
        .await)
        .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_round_trip() {
        for s in [
            MessageStatus::Complete,
            MessageStatus::Cancelled,
            MessageStatus::Failed,
        ] {
            assert_eq!(MessageStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(MessageStatus::parse("done"), None);
    }
}
