//! Where memory vectors and texts are searched: the [`MemoryIndex`] trait, and the
//! in-process index of the embedded deployment.
//!
//! An index answers one question: within these scopes, which memories are closest
//! to this query by meaning, and which match its words? It returns candidates with
//! both scores; ranking them is [`crate::rank`]'s job, so every index back-end
//! (in process, pgvector) ranks the same way.
//!
//! Scopes are a partition, not a filter: an index never even looks at a scope the
//! query does not name, so one person's memories cannot reach another's prompt.

use async_trait::async_trait;
use clara_core::{MemoryId, MemoryKind, Scope};

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod flat;
mod keyword;
#[cfg(feature = "pgvector")]
pub mod pgvector;
mod quantized;
mod text;

pub use flat::{FlatConfig, FlatIndex, VectorSearch};
pub use keyword::Bm25Params;
#[cfg(feature = "pgvector")]
pub use pgvector::PgVectorIndex;

/// One memory as an index holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexedMemory {
    /// Its id.
    pub id: MemoryId,
    /// Whose it is.
    pub scope: Scope,
    /// Learned in a direct message and not marked shareable: recalled only where
    /// [`IndexQuery::include_private`] is set.
    pub private: bool,
    /// What sort of memory it is.
    pub kind: MemoryKind,
    /// The text, for keyword search.
    pub text: String,
    /// Its unit-length embedding.
    pub vector: Vec<f32>,
    /// When what it says happened or was said, Unix ms.
    pub time_ms: i64,
}

/// One search.
#[derive(Clone, Debug)]
pub struct IndexQuery<'a> {
    /// The scopes to search; nothing outside them is looked at.
    pub scopes: &'a [Scope],
    /// Whether private (DM-only) memories may be returned.
    pub include_private: bool,
    /// The query's unit-length embedding.
    pub vector: &'a [f32],
    /// The query's text, for keyword search.
    pub text: &'a str,
    /// How many candidates each retriever returns at most.
    pub limit: usize,
}

/// A memory an index found, with what each retriever thought of it.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// The memory.
    pub id: MemoryId,
    /// Its scope.
    pub scope: Scope,
    /// Its kind.
    pub kind: MemoryKind,
    /// Cosine similarity to the query vector, when the back-end computed it: always
    /// for the vector retriever's hits, and [`flat::FlatIndex`] also fills it for
    /// keyword-only hits (one dot product), so fusion can use both scores.
    pub vector_score: Option<f32>,
    /// Keyword relevance (BM25), when the memory matched any query term.
    pub keyword_score: Option<f32>,
    /// When it happened or was said, Unix ms.
    pub time_ms: i64,
    /// Its text's prompt cost in tokens, as [`clara_core::tokens::EstimatedTokens`]
    /// counts it, so recall can keep to a token budget without the texts.
    pub tokens: usize,
}

/// Why an index failed.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// A vector of the wrong length.
    #[error("a vector has {got} dimensions where the index holds {expected}")]
    Dimension {
        /// The index's dimension.
        expected: usize,
        /// The vector's.
        got: usize,
    },
    /// The back-end (e.g. PostgreSQL) failed.
    #[error("the memory index failed: {0}")]
    Backend(String),
}

impl IndexError {
    /// [`IndexError::Dimension`] unless a vector of `got` dimensions fits an index
    /// of `expected`.
    pub(crate) fn check_dim(expected: usize, got: usize) -> Result<(), IndexError> {
        if got == expected {
            Ok(())
        } else {
            Err(IndexError::Dimension { expected, got })
        }
    }
}

/// Searches memories by meaning and by words, always within named scopes.
#[async_trait]
pub trait MemoryIndex: Send + Sync + 'static {
    /// Adds a memory, or replaces the one with the same id.
    async fn upsert(&self, memory: IndexedMemory) -> Result<(), IndexError>;

    /// Removes a memory; removing an unknown id is not an error.
    async fn remove(&self, id: MemoryId) -> Result<(), IndexError>;

    /// Candidates for `query` from both retrievers, best first within each.
    async fn search(&self, query: IndexQuery<'_>) -> Result<Vec<Candidate>, IndexError>;

    /// How many memories the index holds.
    async fn len(&self) -> Result<usize, IndexError>;

    /// Whether the index holds no memory.
    async fn is_empty(&self) -> Result<bool, IndexError> {
        Ok(self.len().await? == 0)
    }
}
