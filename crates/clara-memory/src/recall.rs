//! Recall's search path, one function from a thought to ranked memories:
//! embed the text, ask the index within the query's scopes, rank.
//!
//! `Rook::recall` and the eval both call [`search_ranked`] (or
//! [`search_ranked_with_vector`] with a vector already made), so the eval
//! measures the path replies take.

use crate::index::{IndexError, IndexQuery, MemoryIndex};
use crate::rank::{self, RankConfig, RankMode, Ranked};
use clara_core::Scope;
use clara_llm::embed::{EmbedError, Embedder};

/// What to recall memories for.
#[derive(Clone, Copy, Debug)]
pub struct RecallQuery<'a> {
    /// The scopes to search (the person's, the project's); nothing else is read.
    pub scopes: &'a [Scope],
    /// Whether private (DM-only) memories may be returned: true only in the
    /// person's direct messages.
    pub include_private: bool,
    /// The thought: what the person just said.
    pub text: &'a str,
}

/// Why recall failed.
#[derive(Debug, thiserror::Error)]
pub enum RecallError {
    /// The query could not be embedded.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] IndexError),
}

/// Embeds `query.text` with `embedder`, then [`search_ranked_with_vector`].
pub async fn search_ranked(
    index: &dyn MemoryIndex,
    embedder: &dyn Embedder,
    query: &RecallQuery<'_>,
    config: &RankConfig,
) -> Result<Vec<Ranked>, RecallError> {
    let vector = embedder.embed_one(query.text).await?;
    search_ranked_with_vector(index, query, &vector, config).await
}

/// Searches `index` for `query` with its embedding `vector` (unit length, made
/// by the index's model) and ranks the candidates by `config`: fused, capped per
/// kind, within the token budget, best first.
///
/// In [`RankMode::PlainCosine`] the keyword retriever is not asked at all, so
/// the baseline costs what a vector-only search costs.
pub async fn search_ranked_with_vector(
    index: &dyn MemoryIndex,
    query: &RecallQuery<'_>,
    vector: &[f32],
    config: &RankConfig,
) -> Result<Vec<Ranked>, RecallError> {
    let text = match config.mode {
        RankMode::Hybrid => query.text,
        RankMode::PlainCosine => "",
    };
    let candidates = index
        .search(IndexQuery {
            scopes: query.scopes,
            include_private: query.include_private,
            vector,
            text,
            limit: config.candidates,
        })
        .await?;
    Ok(rank::rank(candidates, config))
}
