//! Rook's memories: their text and scope, their vectors (one per embedding model),
//! and the history of every change made to them.
//!
//! Every write happens in one transaction with its history row, so a memory never
//! changes without a record of why. Forgetting keeps the row (marked forgotten, its
//! vectors dropped) so the history still explains it; [`Store::purge_memory`]
//! erases a memory and its history for good.

use crate::StoreError;
use crate::backend::{WriteTx, in_tx, on_read, on_write};
use crate::store::{Store, parse_uuid};
use clara_core::{ChannelKind, ConversationId, MemoryId, MemoryKind, MessageId, Scope};

/// A memory as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct MemoryRecord {
    /// Its id.
    pub id: MemoryId,
    /// Whose it is.
    pub scope: Scope,
    /// What sort of memory.
    pub kind: MemoryKind,
    /// What it says.
    pub text: String,
    /// Learned in a direct message or in a group.
    pub origin: ChannelKind,
    /// Whether it may be recalled in group conversations.
    pub shareable: bool,
    /// The conversation it was learned in.
    pub source_conversation: Option<ConversationId>,
    /// The message it was learned from.
    pub source_message: Option<MessageId>,
    /// When what it says happened or was said, Unix ms.
    pub happened_at_ms: i64,
    /// When it was first stored, Unix ms.
    pub created_at_ms: i64,
    /// When it last changed, Unix ms.
    pub updated_at_ms: i64,
    /// When it was forgotten; `None` while it is remembered.
    pub forgotten_at_ms: Option<i64>,
}

impl MemoryRecord {
    /// Whether it may be recalled in a conversation of `kind`: a memory learned in
    /// a direct message stays out of groups until it is marked shareable.
    pub fn visible_in(&self, kind: ChannelKind) -> bool {
        kind == ChannelKind::Direct || self.shareable
    }
}

/// A memory to store.
#[derive(Clone, Debug, PartialEq)]
pub struct NewMemory {
    /// Its id (chosen by the caller, so the vector index can be told first).
    pub id: MemoryId,
    /// Whose it is.
    pub scope: Scope,
    /// What sort of memory.
    pub kind: MemoryKind,
    /// What it says.
    pub text: String,
    /// Learned in a direct message or in a group.
    pub origin: ChannelKind,
    /// Whether it may be recalled in group conversations.
    pub shareable: bool,
    /// The conversation it was learned in.
    pub source_conversation: Option<ConversationId>,
    /// The message it was learned from.
    pub source_message: Option<MessageId>,
    /// When what it says happened or was said, Unix ms.
    pub happened_at_ms: i64,
}

/// Why a memory changed, recorded in its history.
#[derive(Clone, Debug, PartialEq)]
pub struct Provenance {
    /// In words, e.g. "the person moved to Lyon".
    pub reason: String,
    /// Who decided: `extraction`, `person`, `operator`, `import`.
    pub actor: String,
    /// The conversation the change came from.
    pub conversation: Option<ConversationId>,
    /// The message the change came from.
    pub message: Option<MessageId>,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// A vector and the model that made it.
#[derive(Clone, Copy, Debug)]
pub struct ModelVector<'a> {
    /// The embedding model's name.
    pub model: &'a str,
    /// The unit-length vector.
    pub vector: &'a [f32],
}

/// What happened to a memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MemoryEvent {
    /// It was first remembered.
    Add,
    /// Its text (or kind) changed.
    Update,
    /// It was forgotten.
    Forget,
    /// It was marked shareable with groups.
    Share,
    /// It was made private again.
    Unshare,
}

impl MemoryEvent {
    /// The stable name used in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Update => "update",
            Self::Forget => "forget",
            Self::Share => "share",
            Self::Unshare => "unshare",
        }
    }

    /// Parses [`MemoryEvent::as_str`]'s output.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "add" => Some(Self::Add),
            "update" => Some(Self::Update),
            "forget" => Some(Self::Forget),
            "share" => Some(Self::Share),
            "unshare" => Some(Self::Unshare),
            _ => None,
        }
    }
}

/// One change in a memory's history.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRecord {
    /// The memory.
    pub memory: MemoryId,
    /// What happened.
    pub event: MemoryEvent,
    /// The text before (none for an add).
    pub old_text: Option<String>,
    /// The text after (none for a forget).
    pub new_text: Option<String>,
    /// Why.
    pub reason: String,
    /// Who decided.
    pub actor: String,
    /// The conversation it came from.
    pub conversation: Option<ConversationId>,
    /// The message it came from.
    pub message: Option<MessageId>,
    /// When, Unix ms.
    pub at_ms: i64,
}

/// Which memories a listing returns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryFilter {
    /// Include forgotten memories.
    pub include_forgotten: bool,
    /// At most this many (newest first); `None` for all.
    pub limit: Option<u32>,
}

const MEMORY_COLUMNS: &str = "id, scope_kind, scope_id, kind, text, origin, shareable, \
     source_conversation_id, source_message_id, happened_at_ms, created_at_ms, updated_at_ms, \
     forgotten_at_ms";

#[derive(sqlx::FromRow)]
struct MemoryRow {
    id: String,
    scope_kind: String,
    scope_id: String,
    kind: String,
    text: String,
    origin: String,
    /// 0 or 1: an integer on both backends, so one schema and one bind serve both.
    shareable: i64,
    source_conversation_id: Option<String>,
    source_message_id: Option<String>,
    happened_at_ms: i64,
    created_at_ms: i64,
    updated_at_ms: i64,
    forgotten_at_ms: Option<i64>,
}

impl TryFrom<MemoryRow> for MemoryRecord {
    type Error = StoreError;
    fn try_from(r: MemoryRow) -> Result<Self, StoreError> {
        let scope = Scope::from_parts(&r.scope_kind, &r.scope_id).ok_or_else(|| {
            StoreError::invalid(format!(
                "memory {} has an unknown scope {}:{}",
                r.id, r.scope_kind, r.scope_id
            ))
        })?;
        let kind = MemoryKind::parse(&r.kind)
            .ok_or_else(|| StoreError::invalid(format!("memory {} has kind {:?}", r.id, r.kind)))?;
        let origin = ChannelKind::parse(&r.origin).ok_or_else(|| {
            StoreError::invalid(format!("memory {} has origin {:?}", r.id, r.origin))
        })?;
        Ok(MemoryRecord {
            id: MemoryId(parse_uuid(&r.id, "memories.id")?),
            scope,
            kind,
            text: r.text,
            origin,
            shareable: r.shareable != 0,
            source_conversation: optional_id(
                r.source_conversation_id,
                "memories.source_conversation_id",
            )?
            .map(ConversationId),
            source_message: optional_id(r.source_message_id, "memories.source_message_id")?
                .map(MessageId),
            happened_at_ms: r.happened_at_ms,
            created_at_ms: r.created_at_ms,
            updated_at_ms: r.updated_at_ms,
            forgotten_at_ms: r.forgotten_at_ms,
        })
    }
}

#[derive(sqlx::FromRow)]
struct HistoryRow {
    memory_id: String,
    event: String,
    old_text: Option<String>,
    new_text: Option<String>,
    reason: String,
    actor: String,
    conversation_id: Option<String>,
    message_id: Option<String>,
    at_ms: i64,
}

impl TryFrom<HistoryRow> for HistoryRecord {
    type Error = StoreError;
    fn try_from(r: HistoryRow) -> Result<Self, StoreError> {
        Ok(HistoryRecord {
            memory: MemoryId(parse_uuid(&r.memory_id, "memory_history.memory_id")?),
            event: MemoryEvent::parse(&r.event).ok_or_else(|| {
                StoreError::invalid(format!("memory history has event {:?}", r.event))
            })?,
            old_text: r.old_text,
            new_text: r.new_text,
            reason: r.reason,
            actor: r.actor,
            conversation: optional_id(r.conversation_id, "memory_history.conversation_id")?
                .map(ConversationId),
            message: optional_id(r.message_id, "memory_history.message_id")?.map(MessageId),
            at_ms: r.at_ms,
        })
    }
}

fn optional_id(s: Option<String>, what: &str) -> Result<Option<uuid::Uuid>, StoreError> {
    s.map(|s| parse_uuid(&s, what)).transpose()
}

/// Encodes a vector as little-endian f32 bytes.
fn vector_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Decodes [`vector_bytes`]'s output.
fn bytes_vector(b: &[u8], dim: usize, memory: &str) -> Result<Vec<f32>, StoreError> {
    if b.len() != dim * 4 {
        return Err(StoreError::invalid(format!(
            "the vector of memory {memory} has {} bytes, expected {}",
            b.len(),
            dim * 4
        )));
    }
    Ok(b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

impl Store {
    /// Stores a new memory, its vector (if any) and an `add` history row, atomically.
    pub async fn insert_memory(
        &self,
        memory: &NewMemory,
        vector: Option<ModelVector<'_>>,
        why: &Provenance,
    ) -> Result<(), StoreError> {
        let id = memory.id.to_string();
        let mut tx = self.begin_write().await?;
        in_tx!(&mut tx, |c| sqlx::query(
            "INSERT INTO memories (id, scope_kind, scope_id, kind, text, origin, shareable, \
             source_conversation_id, source_message_id, happened_at_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(memory.scope.kind_str())
        .bind(memory.scope.owner_string())
        .bind(memory.kind.as_str())
        .bind(&memory.text)
        .bind(memory.origin.as_str())
        .bind(i64::from(memory.shareable))
        .bind(memory.source_conversation.map(|c| c.to_string()))
        .bind(memory.source_message.map(|m| m.to_string()))
        .bind(memory.happened_at_ms)
        .bind(why.at_ms)
        .bind(why.at_ms)
        .execute(&mut *c)
        .await
.map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        if let Some(v) = vector {
            self.put_vector_in(&mut tx, &id, v).await?;
        }
        self.history_in(
            &mut tx,
            &id,
            MemoryEvent::Add,
            None,
            Some(&memory.text),
            why,
        )
        .await?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Changes a remembered memory's text (and kind), replaces its vectors with
    /// `vector`, and records an `update`; returns the memory as it is now.
    pub async fn update_memory(
        &self,
        id: MemoryId,
        text: &str,
        kind: Option<MemoryKind>,
        vector: Option<ModelVector<'_>>,
        why: &Provenance,
    ) -> Result<MemoryRecord, StoreError> {
        let key = id.to_string();
        let mut tx = self.begin_write().await?;
        let old = self.live_memory_in(&mut tx, id).await?;
        in_tx!(&mut tx, |c| sqlx::query(
            "UPDATE memories SET text = $1, kind = $2, updated_at_ms = $3 WHERE id = $4"
        )
        .bind(text)
        .bind(kind.unwrap_or(old.kind).as_str())
        .bind(why.at_ms)
        .bind(&key)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        // Vectors of the old text no longer describe the memory, whatever model made them.
        in_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM memory_vectors WHERE memory_id = $1"
        )
        .bind(&key)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        if let Some(v) = vector {
            self.put_vector_in(&mut tx, &key, v).await?;
        }
        self.history_in(
            &mut tx,
            &key,
            MemoryEvent::Update,
            Some(&old.text),
            Some(text),
            why,
        )
        .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(MemoryRecord {
            text: text.to_owned(),
            kind: kind.unwrap_or(old.kind),
            updated_at_ms: why.at_ms,
            ..old
        })
    }

    /// Forgets a memory: it is no longer listed or recalled, its vectors are
    /// dropped, and a `forget` row records why. Returns the memory as it was.
    pub async fn forget_memory(
        &self,
        id: MemoryId,
        why: &Provenance,
    ) -> Result<MemoryRecord, StoreError> {
        let key = id.to_string();
        let mut tx = self.begin_write().await?;
        let old = self.live_memory_in(&mut tx, id).await?;
        in_tx!(&mut tx, |c| sqlx::query(
            "UPDATE memories SET forgotten_at_ms = $1, updated_at_ms = $2 WHERE id = $3"
        )
        .bind(why.at_ms)
        .bind(why.at_ms)
        .bind(&key)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        in_tx!(&mut tx, |c| sqlx::query(
            "DELETE FROM memory_vectors WHERE memory_id = $1"
        )
        .bind(&key)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        self.history_in(
            &mut tx,
            &key,
            MemoryEvent::Forget,
            Some(&old.text),
            None,
            why,
        )
        .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(old)
    }

    /// Marks a memory shareable with group conversations (or private again);
    /// records a `share`/`unshare` row when it changes. Returns the memory as it is now.
    pub async fn set_memory_shareable(
        &self,
        id: MemoryId,
        shareable: bool,
        why: &Provenance,
    ) -> Result<MemoryRecord, StoreError> {
        let key = id.to_string();
        let mut tx = self.begin_write().await?;
        let old = self.live_memory_in(&mut tx, id).await?;
        if old.shareable == shareable {
            return Ok(old);
        }
        in_tx!(&mut tx, |c| sqlx::query(
            "UPDATE memories SET shareable = $1, updated_at_ms = $2 WHERE id = $3"
        )
        .bind(i64::from(shareable))
        .bind(why.at_ms)
        .bind(&key)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        let event = if shareable {
            MemoryEvent::Share
        } else {
            MemoryEvent::Unshare
        };
        self.history_in(&mut tx, &key, event, Some(&old.text), Some(&old.text), why)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(MemoryRecord {
            shareable,
            updated_at_ms: why.at_ms,
            ..old
        })
    }

    /// Erases a memory, its vectors and its history for good (an operator's
    /// "forget it ever existed"). Returns whether it existed.
    pub async fn purge_memory(&self, id: MemoryId) -> Result<bool, StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "DELETE FROM memories WHERE id = $1"
        )
        .bind(id.to_string())
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(done > 0)
    }

    /// One memory, remembered or forgotten.
    pub async fn memory(&self, id: MemoryId) -> Result<Option<MemoryRecord>, StoreError> {
        let row: Option<MemoryRow> =
            on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
                format!("SELECT {MEMORY_COLUMNS} FROM memories WHERE id = $1")
            ))
            .bind(id.to_string())
            .fetch_optional(pool)
            .await)
            .map_err(|e| self.err(e))?;
        row.map(MemoryRecord::try_from).transpose()
    }

    /// The remembered memories among `ids`, in no particular order (forgotten and
    /// unknown ids are left out).
    pub async fn memories_by_ids(&self, ids: &[MemoryId]) -> Result<Vec<MemoryRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let marks = (1..=ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE forgotten_at_ms IS NULL AND id IN ({marks})"
        );
        let rows = on_read!(&self.pools, |pool| {
            let mut query = sqlx::query_as::<_, MemoryRow>(sqlx::AssertSqlSafe(sql));
            for id in ids {
                query = query.bind(id.to_string());
            }
            query.fetch_all(pool).await
        })
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(MemoryRecord::try_from).collect()
    }

    /// The memories of a scope, most recently changed first.
    pub async fn list_memories(
        &self,
        scope: Scope,
        filter: MemoryFilter,
    ) -> Result<Vec<MemoryRecord>, StoreError> {
        let forgotten = if filter.include_forgotten {
            ""
        } else {
            "AND forgotten_at_ms IS NULL"
        };
        let rows: Vec<MemoryRow> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE scope_kind = $1 AND scope_id = $2 {forgotten} \
             ORDER BY updated_at_ms DESC, id DESC LIMIT $3"
        )))
        .bind(scope.kind_str())
        .bind(scope.owner_string())
        // PostgreSQL refuses a negative LIMIT; no listing reaches i64::MAX rows.
        .bind(filter.limit.map_or(i64::MAX, i64::from))
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(MemoryRecord::try_from).collect()
    }

    /// The history of one memory, oldest first.
    pub async fn memory_history(&self, id: MemoryId) -> Result<Vec<HistoryRecord>, StoreError> {
        let rows: Vec<HistoryRow> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT memory_id, event, old_text, new_text, reason, actor, conversation_id, \
             message_id, at_ms FROM memory_history WHERE memory_id = $1 ORDER BY seq",
        )
        .bind(id.to_string())
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(HistoryRecord::try_from).collect()
    }

    /// Every remembered memory with its vector from `model` (what an in-process
    /// index loads at start). Memories without such a vector are left out.
    pub async fn memories_with_vectors(
        &self,
        model: &str,
    ) -> Result<Vec<(MemoryRecord, Vec<f32>)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            memory: MemoryRow,
            dim: i64,
            vector: Vec<u8>,
        }
        let columns = MEMORY_COLUMNS
            .split(", ")
            .map(|c| format!("m.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<Row> = on_read!(&self.pools, |pool| sqlx::query_as(sqlx::AssertSqlSafe(
            format!(
                "SELECT {columns}, v.dim, v.vector FROM memories m \
             JOIN memory_vectors v ON v.memory_id = m.id AND v.model = $1 \
             WHERE m.forgotten_at_ms IS NULL"
            )
        ))
        .bind(model)
        .fetch_all(pool)
        .await)
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|r| {
                let dim = usize::try_from(r.dim).unwrap_or(0);
                let vector = bytes_vector(&r.vector, dim, &r.memory.id)?;
                Ok((MemoryRecord::try_from(r.memory)?, vector))
            })
            .collect()
    }

    /// The vector `model` made for a memory, if it has one.
    pub async fn memory_vector(
        &self,
        id: MemoryId,
        model: &str,
    ) -> Result<Option<Vec<f32>>, StoreError> {
        let row: Option<(i64, Vec<u8>)> = on_read!(&self.pools, |pool| sqlx::query_as(
            "SELECT dim, vector FROM memory_vectors WHERE memory_id = $1 AND model = $2",
        )
        .bind(id.to_string())
        .bind(model)
        .fetch_optional(pool)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(|(dim, bytes)| {
            bytes_vector(&bytes, usize::try_from(dim).unwrap_or(0), &id.to_string())
        })
        .transpose()
    }

    /// Up to `limit` remembered memories that have no vector from `model` yet
    /// (new ones whose embedding failed, or all of them after a change of model).
    pub async fn memories_without_vector(
        &self,
        model: &str,
        limit: u32,
    ) -> Result<Vec<MemoryRecord>, StoreError> {
        let rows: Vec<MemoryRow> = on_read!(&self.pools, |pool| {
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories m WHERE forgotten_at_ms IS NULL AND NOT EXISTS \
             (SELECT 1 FROM memory_vectors v WHERE v.memory_id = m.id AND v.model = $1) \
             ORDER BY created_at_ms LIMIT $2"
        )))
        .bind(model)
        .bind(i64::from(limit))
        .fetch_all(pool)
        .await
        })
        .map_err(|e| self.err(e))?;
        rows.into_iter().map(MemoryRecord::try_from).collect()
    }

    /// Stores `vector` for a remembered memory, replacing one from the same model.
    /// Returns false when the memory is gone or forgotten (nothing is stored).
    pub async fn put_memory_vector(
        &self,
        id: MemoryId,
        vector: ModelVector<'_>,
    ) -> Result<bool, StoreError> {
        let key = id.to_string();
        let mut tx = self.begin_write().await?;
        let live: Option<(String,)> = in_tx!(&mut tx, |c| sqlx::query_as(
            "SELECT id FROM memories WHERE id = $1 AND forgotten_at_ms IS NULL"
        )
        .bind(&key)
        .fetch_optional(&mut *c)
        .await)
        .map_err(|e| self.err(e))?;
        if live.is_none() {
            return Ok(false);
        }
        self.put_vector_in(&mut tx, &key, vector).await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(true)
    }

    /// Drops the vectors of every model but `keep` (after a re-embedding finished).
    pub async fn drop_other_memory_vectors(&self, keep: &str) -> Result<u64, StoreError> {
        let done = on_write!(&self.pools, |pool| sqlx::query(
            "DELETE FROM memory_vectors WHERE model <> $1"
        )
        .bind(keep)
        .execute(pool)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(done)
    }

    /// How many remembered memories a scope holds (all scopes when `None`).
    pub async fn count_memories(&self, scope: Option<Scope>) -> Result<u64, StoreError> {
        let (n,): (i64,) = match scope {
            Some(scope) => on_read!(&self.pools, |pool| sqlx::query_as(
                "SELECT COUNT(*) FROM memories WHERE scope_kind = $1 AND scope_id = $2 \
                 AND forgotten_at_ms IS NULL",
            )
            .bind(scope.kind_str())
            .bind(scope.owner_string())
            .fetch_one(pool)
            .await),
            None => on_read!(&self.pools, |pool| sqlx::query_as(
                "SELECT COUNT(*) FROM memories WHERE forgotten_at_ms IS NULL"
            )
            .fetch_one(pool)
            .await),
        }
        .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn live_memory_in(
        &self,
        tx: &mut WriteTx,
        id: MemoryId,
    ) -> Result<MemoryRecord, StoreError> {
        let row: Option<MemoryRow> = in_tx!(tx, |c| sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {MEMORY_COLUMNS} FROM memories WHERE id = $1 AND forgotten_at_ms IS NULL"
        )))
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await)
        .map_err(|e| self.err(e))?;
        row.map(MemoryRecord::try_from)
            .transpose()?
            .ok_or_else(|| StoreError::not_found(format!("memory {id}")))
    }

    async fn put_vector_in(
        &self,
        tx: &mut WriteTx,
        id: &str,
        v: ModelVector<'_>,
    ) -> Result<(), StoreError> {
        in_tx!(tx, |c| sqlx::query(
            "INSERT INTO memory_vectors (memory_id, model, dim, vector) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (memory_id, model) DO UPDATE SET dim = excluded.dim, vector = excluded.vector",
        )
        .bind(id)
        .bind(v.model)
        .bind(i64::try_from(v.vector.len()).unwrap_or(i64::MAX))
        .bind(vector_bytes(v.vector))
        .execute(&mut *c)
        .await
.map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn history_in(
        &self,
        tx: &mut WriteTx,
        id: &str,
        event: MemoryEvent,
        old_text: Option<&str>,
        new_text: Option<&str>,
        why: &Provenance,
    ) -> Result<(), StoreError> {
        in_tx!(tx, |c| sqlx::query(
            "INSERT INTO memory_history (memory_id, event, old_text, new_text, reason, actor, \
             conversation_id, message_id, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(id)
        .bind(event.as_str())
        .bind(old_text)
        .bind(new_text)
        .bind(&why.reason)
        .bind(&why.actor)
        .bind(why.conversation.map(|c| c.to_string()))
        .bind(why.message.map(|m| m.to_string()))
        .bind(why.at_ms)
        .execute(&mut *c)
        .await
        .map(|r| r.rows_affected()))
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}
