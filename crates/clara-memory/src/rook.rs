//! [`Rook`]: the memory service the rest of Clara talks to.
//!
//! It owns the three halves of a memory — the row in the store (with its history),
//! the vector, and the entry in the index — and keeps them in step: the store is
//! written first (it is the truth), then the index. At start the index is loaded
//! from the store's vectors of the current embedding model; memories without such
//! a vector (a changed model, a failed embedding) are re-embedded in the background
//! by [`Rook::reembed_pending`].

use crate::decide::{self, Decided, Decision, Neighbour};
use crate::extract::{self, About, Exchange, Fact};
use crate::index::{FlatIndex, IndexError, IndexQuery, IndexedMemory, MemoryIndex};
use crate::rank::RankConfig;
use crate::recall::{self, RecallError, RecallQuery};
use clara_core::{
    ChannelKind, ConversationId, MemoryId, MemoryKind, MessageId, ProjectId, Role, Scope,
    ThoughtId, UserId,
};
use clara_llm::embed::{EmbedError, Embedder};
use clara_llm::{ChatProvider, ChatRequest, LlmError};
use clara_store::{
    HistoryRecord, MemoryFilter, MemoryRecord, ModelVector, NewMemory, Provenance, Store,
    StoreError,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Mutex;

/// How Rook behaves.
#[derive(Clone, Debug)]
pub struct RookConfig {
    /// How recall ranks and bounds what reaches a prompt.
    pub rank: RankConfig,
    /// How many existing memories a new fact is compared with.
    pub neighbours: usize,
    /// The model for extraction and decisions; `None` uses the provider's default.
    pub model: Option<String>,
    /// Upper bound on an extraction answer, in tokens.
    pub max_tokens: u32,
}

impl Default for RookConfig {
    fn default() -> Self {
        Self {
            rank: RankConfig::default(),
            neighbours: 5,
            model: None,
            max_tokens: 700,
        }
    }
}

/// Why a memory operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Embedding failed.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// The language model failed.
    #[error("the language model failed: {0}")]
    Llm(#[from] LlmError),
    /// The model's answer could not be used.
    #[error(transparent)]
    Malformed(#[from] extract::MalformedFacts),
    /// Extraction needs a language model and none was given.
    #[error("memory extraction needs a language model, and none is configured")]
    NoModel,
    /// The memory does not exist, is forgotten, or belongs to someone else.
    #[error("no memory {0} that you may change")]
    NotYours(MemoryId),
}

impl From<RecallError> for MemoryError {
    fn from(e: RecallError) -> Self {
        match e {
            RecallError::Embed(e) => Self::Embed(e),
            RecallError::Index(e) => Self::Index(e),
        }
    }
}

/// What to recall memories for.
#[derive(Clone, Copy, Debug)]
pub struct RecallRequest<'a> {
    /// The person speaking.
    pub user: UserId,
    /// The conversation's project, if it has one.
    pub project: Option<ProjectId>,
    /// Where they speak: private memories are recalled only in direct messages.
    pub channel: ChannelKind,
    /// What they said.
    pub text: &'a str,
}

/// A memory recalled for a prompt or a search.
#[derive(Clone, Debug, PartialEq)]
pub struct Recalled {
    /// The memory.
    pub memory: MemoryRecord,
    /// The fused score: higher is better, comparable within one recall.
    pub score: f32,
}

/// Where a fact or a change came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Origin {
    /// The person it is about (and whose scope person-facts go to).
    pub user: UserId,
    /// Their name, for the extraction prompt.
    pub person: String,
    /// The conversation's project, if any.
    pub project: Option<ProjectId>,
    /// DM or group.
    pub channel: ChannelKind,
    /// The conversation.
    pub conversation: Option<ConversationId>,
    /// The message it came from.
    pub message: Option<MessageId>,
    /// When it was said, Unix ms.
    pub at_ms: i64,
}

/// What one extraction changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LearnReport {
    /// Facts the model found.
    pub facts: usize,
    /// New memories.
    pub added: Vec<MemoryId>,
    /// Memories whose text changed.
    pub updated: Vec<MemoryId>,
    /// Memories forgotten because a fact contradicted them.
    pub deleted: Vec<MemoryId>,
    /// Facts that were already known.
    pub unchanged: usize,
    /// Decisions the model answered unreadably (a safe choice was taken instead).
    pub fallbacks: usize,
}

/// One memory as exported (`clara memory export`) and imported.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedMemory {
    /// Its id; importing an id that exists skips it.
    pub id: MemoryId,
    /// `user:<uuid>` or `project:<uuid>`.
    pub scope: String,
    /// The project's name, for a project's memory, so an import into another
    /// installation can recreate the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// What sort of memory.
    pub kind: MemoryKind,
    /// What it says.
    pub text: String,
    /// Learned in a DM (`direct`) or a group (`group`).
    pub origin: ChannelKind,
    /// Whether groups may see it.
    pub shareable: bool,
    /// When what it says happened, Unix ms.
    pub happened_at_ms: i64,
    /// When it was first stored, Unix ms.
    pub created_at_ms: i64,
}

/// The memory service. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Rook {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    index: Arc<dyn MemoryIndex>,
    embedder: Arc<dyn Embedder>,
    llm: Option<Arc<dyn ChatProvider>>,
    config: RookConfig,
    /// Learning compares new facts with what is remembered and then writes; two
    /// extractions interleaving could both add the same fact, so they take turns.
    learning: Mutex<()>,
    /// Vectors of other models may still be stored: true from start (the model may
    /// have changed since the last run) until a pass finds nothing to re-embed and
    /// drops them, so idle passes do not write.
    stale_vectors: AtomicBool,
}

impl Rook {
    /// Opens Rook over `store` with the in-process index, loading every memory
    /// that has a vector of `embedder`'s model.
    pub async fn open(
        store: Store,
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn ChatProvider>>,
        config: RookConfig,
    ) -> Result<Rook, MemoryError> {
        let model = embedder.model().clone();
        let index = FlatIndex::new(model.dim);
        let loaded = store.memories_with_vectors(&model.name).await?;
        let count = loaded.len();
        index.upsert_many(
            loaded
                .into_iter()
                .map(|(memory, vector)| indexed(&memory, vector)),
        )?;
        tracing::info!(memories = count, model = %model.name, "memory index loaded");
        Ok(Self::with_index(
            store,
            Arc::new(index),
            embedder,
            llm,
            config,
        ))
    }

    /// Opens Rook over `store` with the pgvector index, in `url` (e.g.
    /// `ROOK_DATABASE_URL`) or, without one, in the store's own PostgreSQL
    /// database. The index is refilled from the store's vectors of `embedder`'s
    /// model, since the store is memory's truth.
    #[cfg(feature = "pgvector")]
    pub async fn open_pgvector(
        store: Store,
        url: Option<&str>,
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn ChatProvider>>,
        config: RookConfig,
    ) -> Result<Rook, MemoryError> {
        use crate::index::PgVectorIndex;
        let model = embedder.model().clone();
        let index = match (url, store.postgres_pool()) {
            (Some(url), _) => PgVectorIndex::connect(url, model.dim).await?,
            (None, Some(pool)) => PgVectorIndex::with_pool(pool, model.dim).await?,
            (None, None) => {
                return Err(IndexError::Backend(
                    "the pgvector index needs a PostgreSQL database: set ROOK_DATABASE_URL, or keep the store in PostgreSQL".into(),
                )
                .into());
            }
        };
        let loaded = store.memories_with_vectors(&model.name).await?;
        let count = index
            .rebuild(
                loaded
                    .into_iter()
                    .map(|(memory, vector)| indexed(&memory, vector)),
            )
            .await?;
        tracing::info!(memories = count, model = %model.name, "pgvector memory index loaded");
        Ok(Self::with_index(
            store,
            Arc::new(index),
            embedder,
            llm,
            config,
        ))
    }

    /// Rook over an index of the caller's choosing (e.g. pgvector), which must
    /// already hold the store's memories.
    pub fn with_index(
        store: Store,
        index: Arc<dyn MemoryIndex>,
        embedder: Arc<dyn Embedder>,
        llm: Option<Arc<dyn ChatProvider>>,
        config: RookConfig,
    ) -> Rook {
        Rook {
            inner: Arc::new(Inner {
                store,
                index,
                embedder,
                llm,
                config,
                learning: Mutex::new(()),
                stale_vectors: AtomicBool::new(true),
            }),
        }
    }

    /// The store Rook writes to.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The embedder.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.inner.embedder
    }

    /// Whether Rook learns from exchanges (it has a language model to extract with).
    /// Without one, memories come only from the person and the operator.
    pub fn learns(&self) -> bool {
        self.inner.llm.is_some()
    }

    /// Memories for a prompt: the person's and the project's, ranked, capped per
    /// kind and within the token budget. In a group, the person's private (DM)
    /// memories stay out.
    pub async fn recall(&self, request: &RecallRequest<'_>) -> Result<Vec<Recalled>, MemoryError> {
        let scopes = scopes_of(request.user, request.project);
        self.search(
            &scopes,
            request.channel == ChannelKind::Direct,
            request.text,
            &self.inner.config.rank,
        )
        .await
    }

    /// Searches `scopes` for `text` with `rank` (for tools, the CLI and recall).
    pub async fn search(
        &self,
        scopes: &[Scope],
        include_private: bool,
        text: &str,
        rank: &RankConfig,
    ) -> Result<Vec<Recalled>, MemoryError> {
        if text.trim().is_empty() || scopes.is_empty() {
            return Ok(Vec::new());
        }
        let query = RecallQuery {
            scopes,
            include_private,
            text,
        };
        let ranked = recall::search_ranked(
            self.inner.index.as_ref(),
            self.inner.embedder.as_ref(),
            &query,
            rank,
        )
        .await?;
        let ids: Vec<MemoryId> = ranked.iter().map(|r| r.id).collect();
        let mut records = self.inner.store.memories_by_ids(&ids).await?;
        let mut out = Vec::with_capacity(ranked.len());
        for r in ranked {
            // The index may briefly hold a memory the store just forgot; the store wins.
            if let Some(i) = records.iter().position(|m| m.id == r.id) {
                let memory = records.swap_remove(i);
                // Scope is checked again against the store's truth, not the index's.
                if scopes.contains(&memory.scope) && (include_private || is_public(&memory)) {
                    out.push(Recalled {
                        memory,
                        score: r.score,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Learns from one exchange: extracts facts with the model, then adds, updates
    /// or forgets memories, each change recorded with `origin`.
    pub async fn learn(
        &self,
        said: &str,
        reply: &str,
        origin: &Origin,
    ) -> Result<LearnReport, MemoryError> {
        let llm = self.inner.llm.as_ref().ok_or(MemoryError::NoModel)?;
        let project_name = match origin.project {
            Some(id) => self.inner.store.project(id).await?.map(|p| p.name),
            None => None,
        };
        let exchange = Exchange {
            person: &origin.person,
            said,
            reply,
            date_label: &date_label(origin.at_ms),
            project: project_name.as_deref(),
        };
        let answer = llm
            .complete(self.request(extract::extraction_messages(&exchange)))
            .await;
        let facts = match answer {
            Ok(text) => extract::parse_facts(&text)?,
            // Nothing at all to say is an answer: no facts.
            Err(LlmError::Empty) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        let _turn = self.inner.learning.lock().await;
        let mut report = LearnReport {
            facts: facts.len(),
            ..LearnReport::default()
        };
        for fact in facts {
            self.apply_fact(llm.as_ref(), fact, origin, &mut report)
                .await?;
        }
        Ok(report)
    }

    /// Learns from a stored thought: what the person said in it and Clara's reply.
    /// `person` is the name to use in the prompt. A thought with nothing said by a
    /// person (or already gone) teaches nothing.
    pub async fn learn_from_thought(
        &self,
        conversation: ConversationId,
        thought: ThoughtId,
        person: &str,
    ) -> Result<LearnReport, MemoryError> {
        let store = &self.inner.store;
        let messages = store.thought_messages(thought).await?;
        let Some(first) = messages.iter().find(|m| m.role == Role::User) else {
            return Ok(LearnReport::default());
        };
        let Some(user) = first.user else {
            return Ok(LearnReport::default());
        };
        let join = |role: Role| {
            messages
                .iter()
                .filter(|m| m.role == role)
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>()
                .join("\n")
        };
        let channel = store
            .conversation_ref(conversation)
            .await?
            .map_or(ChannelKind::Direct, |c| c.kind);
        let origin = Origin {
            user,
            person: person.to_owned(),
            project: store.conversation_project(conversation).await?,
            channel,
            conversation: Some(conversation),
            message: Some(first.id),
            at_ms: first.created_at_ms,
        };
        self.learn(&join(Role::User), &join(Role::Assistant), &origin)
            .await
    }

    async fn apply_fact(
        &self,
        llm: &dyn ChatProvider,
        fact: Fact,
        origin: &Origin,
        report: &mut LearnReport,
    ) -> Result<(), MemoryError> {
        let scope = match (fact.about, origin.project) {
            (About::Project, Some(project)) => Scope::Project(project),
            _ => Scope::User(origin.user),
        };
        let vector = self.inner.embedder.embed_one(&fact.text).await?;
        let neighbours = self.neighbours(scope, &fact.text, &vector).await?;
        let decided = match decide::shortcut(&fact, &neighbours) {
            Some(d) => d,
            None => {
                let answer = llm
                    .complete(self.request(decide::decision_messages(&fact, &neighbours)))
                    .await?;
                decide::parse_decision(&answer, &fact, &neighbours).unwrap_or_else(|e| {
                    report.fallbacks += 1;
                    tracing::warn!(error = %e, "memory decision unreadable; took the safe choice");
                    decide::fallback(&neighbours, &e)
                })
            }
        };
        let why = self.provenance(origin, "extraction", &decided.reason);
        let Decided { decision, .. } = decided;
        match decision {
            Decision::Add => {
                let memory = NewMemory {
                    id: MemoryId::new(),
                    scope,
                    kind: fact.kind,
                    text: fact.text,
                    origin: origin.channel,
                    shareable: default_shareable(scope, origin.channel),
                    source_conversation: origin.conversation,
                    source_message: origin.message,
                    happened_at_ms: origin.at_ms,
                };
                report.added.push(memory.id);
                self.insert(&memory, vector, &why).await?;
            }
            Decision::Update { target, text } => {
                let vector = if text == fact.text {
                    vector
                } else {
                    self.inner.embedder.embed_one(&text).await?
                };
                self.update(target, &text, Some(fact.kind), vector, &why)
                    .await?;
                report.updated.push(target);
            }
            Decision::Delete { target } => {
                self.inner.store.forget_memory(target, &why).await?;
                self.inner.index.remove(target).await?;
                report.deleted.push(target);
            }
            Decision::Nothing => report.unchanged += 1,
        }
        Ok(())
    }

    /// The memories of `scope` closest to a new fact, best first, with their texts.
    async fn neighbours(
        &self,
        scope: Scope,
        text: &str,
        vector: &[f32],
    ) -> Result<Vec<Neighbour>, MemoryError> {
        let limit = self.inner.config.neighbours;
        let mut candidates = self
            .inner
            .index
            .search(IndexQuery {
                scopes: &[scope],
                include_private: true,
                vector,
                text,
                limit,
            })
            .await?;
        candidates.retain(|c| c.vector_score.is_some());
        candidates.sort_by(|a, b| {
            b.vector_score
                .unwrap_or(0.0)
                .total_cmp(&a.vector_score.unwrap_or(0.0))
        });
        candidates.truncate(limit);
        let ids: Vec<MemoryId> = candidates.iter().map(|c| c.id).collect();
        let records = self.inner.store.memories_by_ids(&ids).await?;
        Ok(candidates
            .into_iter()
            .filter_map(|c| {
                let memory = records.iter().find(|m| m.id == c.id)?;
                Some(Neighbour {
                    id: c.id,
                    text: memory.text.clone(),
                    similarity: c.vector_score.unwrap_or(0.0),
                })
            })
            .collect())
    }

    /// Remembers `text` directly (a person's "remember that…", an operator's add).
    pub async fn remember(
        &self,
        scope: Scope,
        kind: MemoryKind,
        text: &str,
        origin: &Origin,
        actor: &str,
        reason: &str,
    ) -> Result<MemoryRecord, MemoryError> {
        let text = text.trim();
        let vector = self.inner.embedder.embed_one(text).await?;
        let memory = NewMemory {
            id: MemoryId::new(),
            scope,
            kind,
            text: text.to_owned(),
            origin: origin.channel,
            shareable: default_shareable(scope, origin.channel),
            source_conversation: origin.conversation,
            source_message: origin.message,
            happened_at_ms: origin.at_ms,
        };
        self.insert(&memory, vector, &self.provenance(origin, actor, reason))
            .await?;
        self.inner
            .store
            .memory(memory.id)
            .await?
            .ok_or(MemoryError::NotYours(memory.id))
    }

    /// Replaces a memory's text (a correction), recorded with `why`.
    pub async fn correct(
        &self,
        id: MemoryId,
        text: &str,
        why: &Provenance,
    ) -> Result<MemoryRecord, MemoryError> {
        let vector = self.inner.embedder.embed_one(text.trim()).await?;
        self.update(id, text.trim(), None, vector, why).await
    }

    /// Forgets a memory, recorded with `why`; returns it as it was.
    pub async fn forget(
        &self,
        id: MemoryId,
        why: &Provenance,
    ) -> Result<MemoryRecord, MemoryError> {
        let old = self
            .inner
            .store
            .forget_memory(id, why)
            .await
            .map_err(|e| not_yours(e, id))?;
        self.inner.index.remove(id).await?;
        Ok(old)
    }

    /// Marks a memory shareable with groups (or private again).
    pub async fn set_shareable(
        &self,
        id: MemoryId,
        shareable: bool,
        why: &Provenance,
    ) -> Result<MemoryRecord, MemoryError> {
        let memory = self
            .inner
            .store
            .set_memory_shareable(id, shareable, why)
            .await
            .map_err(|e| not_yours(e, id))?;
        self.reindex(&memory).await?;
        Ok(memory)
    }

    /// Erases a memory and its history for good; returns whether it existed.
    pub async fn purge(&self, id: MemoryId) -> Result<bool, MemoryError> {
        let existed = self.inner.store.purge_memory(id).await?;
        self.inner.index.remove(id).await?;
        Ok(existed)
    }

    /// The memories of a scope, newest change first.
    pub async fn list(
        &self,
        scope: Scope,
        filter: MemoryFilter,
    ) -> Result<Vec<MemoryRecord>, MemoryError> {
        Ok(self.inner.store.list_memories(scope, filter).await?)
    }

    /// One memory.
    pub async fn memory(&self, id: MemoryId) -> Result<Option<MemoryRecord>, MemoryError> {
        Ok(self.inner.store.memory(id).await?)
    }

    /// Everything that happened to a memory, oldest first.
    pub async fn history(&self, id: MemoryId) -> Result<Vec<HistoryRecord>, MemoryError> {
        Ok(self.inner.store.memory_history(id).await?)
    }

    /// The remembered memories of a scope, for export.
    pub async fn export(&self, scope: Scope) -> Result<Vec<ExportedMemory>, MemoryError> {
        let memories = self
            .inner
            .store
            .list_memories(scope, MemoryFilter::default())
            .await?;
        let project = match scope {
            Scope::Project(id) => self.inner.store.project(id).await?.map(|p| p.name),
            Scope::User(_) => None,
        };
        Ok(memories
            .into_iter()
            .rev()
            .map(|m| ExportedMemory {
                id: m.id,
                scope: m.scope.to_string(),
                project: project.clone(),
                kind: m.kind,
                text: m.text,
                origin: m.origin,
                shareable: m.shareable,
                happened_at_ms: m.happened_at_ms,
                created_at_ms: m.created_at_ms,
            })
            .collect())
    }

    /// Imports exported memories into `scope` (or each one's own scope when
    /// `None`); ids that already exist are skipped. Returns how many were added.
    pub async fn import(
        &self,
        memories: &[ExportedMemory],
        scope: Option<Scope>,
        at_ms: i64,
    ) -> Result<usize, MemoryError> {
        let mut added = 0;
        for chunk in memories.chunks(32) {
            let texts: Vec<String> = chunk.iter().map(|m| m.text.clone()).collect();
            let vectors = self.inner.embedder.embed(&texts).await?;
            for (m, vector) in chunk.iter().zip(vectors) {
                if self.inner.store.memory(m.id).await?.is_some() {
                    continue;
                }
                let target = match (scope, &m.project) {
                    (Some(s), _) => s,
                    // A project is known here by its name; its id may differ.
                    (None, Some(name)) => {
                        Scope::Project(self.inner.store.ensure_project(name, at_ms).await?.id)
                    }
                    (None, None) => m.scope.parse().map_err(|_| {
                        MemoryError::Store(StoreError::InvalidData {
                            detail: format!("memory {} has scope {:?}", m.id, m.scope),
                        })
                    })?,
                };
                let memory = NewMemory {
                    id: m.id,
                    scope: target,
                    kind: m.kind,
                    text: m.text.clone(),
                    origin: m.origin,
                    shareable: m.shareable,
                    source_conversation: None,
                    source_message: None,
                    happened_at_ms: m.happened_at_ms,
                };
                let why = Provenance {
                    reason: "imported".to_owned(),
                    actor: "import".to_owned(),
                    conversation: None,
                    message: None,
                    at_ms,
                };
                self.insert(&memory, vector, &why).await?;
                added += 1;
            }
        }
        Ok(added)
    }

    /// Embeds up to `batch` memories that have no vector of the current model
    /// (after a change of model, or a failed embedding) and indexes them. Returns
    /// how many were done; once none are left, vectors of other models are dropped.
    pub async fn reembed_pending(&self, batch: u32) -> Result<usize, MemoryError> {
        let model = self.inner.embedder.model().name.clone();
        let pending = self
            .inner
            .store
            .memories_without_vector(&model, batch)
            .await?;
        if pending.is_empty() {
            if !self.inner.stale_vectors.swap(false, Ordering::Relaxed) {
                return Ok(0);
            }
            let dropped = self.inner.store.drop_other_memory_vectors(&model).await?;
            if dropped > 0 {
                tracing::info!(dropped, %model, "re-embedding finished; dropped vectors of other models");
            }
            return Ok(0);
        }
        let texts: Vec<String> = pending.iter().map(|m| m.text.clone()).collect();
        let vectors = self.inner.embedder.embed(&texts).await?;
        for (memory, vector) in pending.iter().zip(vectors) {
            let stored = self
                .inner
                .store
                .put_memory_vector(
                    memory.id,
                    ModelVector {
                        model: &model,
                        vector: &vector,
                    },
                )
                .await?;
            if stored {
                self.inner.index.upsert(indexed(memory, vector)).await?;
            }
        }
        Ok(pending.len())
    }

    async fn insert(
        &self,
        memory: &NewMemory,
        vector: Vec<f32>,
        why: &Provenance,
    ) -> Result<(), MemoryError> {
        let model = &self.inner.embedder.model().name;
        self.inner
            .store
            .insert_memory(
                memory,
                Some(ModelVector {
                    model,
                    vector: &vector,
                }),
                why,
            )
            .await?;
        let record = MemoryRecord {
            id: memory.id,
            scope: memory.scope,
            kind: memory.kind,
            text: memory.text.clone(),
            origin: memory.origin,
            shareable: memory.shareable,
            source_conversation: memory.source_conversation,
            source_message: memory.source_message,
            happened_at_ms: memory.happened_at_ms,
            created_at_ms: why.at_ms,
            updated_at_ms: why.at_ms,
            forgotten_at_ms: None,
        };
        self.inner.index.upsert(indexed(&record, vector)).await?;
        Ok(())
    }

    async fn update(
        &self,
        id: MemoryId,
        text: &str,
        kind: Option<MemoryKind>,
        vector: Vec<f32>,
        why: &Provenance,
    ) -> Result<MemoryRecord, MemoryError> {
        let model = &self.inner.embedder.model().name;
        let memory = self
            .inner
            .store
            .update_memory(
                id,
                text,
                kind,
                Some(ModelVector {
                    model,
                    vector: &vector,
                }),
                why,
            )
            .await
            .map_err(|e| not_yours(e, id))?;
        self.inner.index.upsert(indexed(&memory, vector)).await?;
        Ok(memory)
    }

    /// Re-indexes a memory whose visibility changed, with its stored vector (or a
    /// fresh one when it has none of the current model yet).
    async fn reindex(&self, memory: &MemoryRecord) -> Result<(), MemoryError> {
        let model = &self.inner.embedder.model().name;
        let vector = match self.inner.store.memory_vector(memory.id, model).await? {
            Some(v) => v,
            None => self.inner.embedder.embed_one(&memory.text).await?,
        };
        self.inner.index.upsert(indexed(memory, vector)).await?;
        Ok(())
    }

    fn request(&self, messages: Vec<clara_core::ChatMessage>) -> ChatRequest {
        ChatRequest {
            model: self.inner.config.model.clone(),
            messages,
            max_tokens: Some(self.inner.config.max_tokens),
            temperature: Some(0.0),
            tools: Vec::new(),
        }
    }

    fn provenance(&self, origin: &Origin, actor: &str, reason: &str) -> Provenance {
        Provenance {
            reason: reason.to_owned(),
            actor: actor.to_owned(),
            conversation: origin.conversation,
            message: origin.message,
            at_ms: origin.at_ms,
        }
    }
}

/// The scopes a person's recall reads: theirs, and their conversation's project's.
pub fn scopes_of(user: UserId, project: Option<ProjectId>) -> Vec<Scope> {
    let mut scopes = vec![Scope::User(user)];
    scopes.extend(project.map(Scope::Project));
    scopes
}

/// Project memories are shared by the project's members; a person's memory is
/// shareable with groups when it was learned in one.
fn default_shareable(scope: Scope, channel: ChannelKind) -> bool {
    matches!(scope, Scope::Project(_)) || channel == ChannelKind::Group
}

/// Whether a memory may be recalled outside its owner's direct messages.
fn is_public(memory: &MemoryRecord) -> bool {
    matches!(memory.scope, Scope::Project(_)) || memory.shareable
}

fn indexed(memory: &MemoryRecord, vector: Vec<f32>) -> IndexedMemory {
    IndexedMemory {
        id: memory.id,
        scope: memory.scope,
        private: !is_public(memory),
        kind: memory.kind,
        text: memory.text.clone(),
        vector,
        time_ms: memory.happened_at_ms,
    }
}

fn not_yours(e: StoreError, id: MemoryId) -> MemoryError {
    match e {
        StoreError::NotFound { .. } => MemoryError::NotYours(id),
        e => MemoryError::Store(e),
    }
}

/// "Monday 30 November 2026 (UTC)", for prompts.
fn date_label(at_ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.format("%A %-d %B %Y (UTC)").to_string())
        .unwrap_or_else(|| "unknown".to_owned())
}
