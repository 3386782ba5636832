//! Rook, Clara's long-term memory.
//!
//! It remembers what matters about people and projects, recalls it by meaning within
//! milliseconds, never slows a reply down, and never shows one person's memories to
//! another.
//!
//! - **Scopes.** Every read and write names a [`Scope`](clara_core::Scope): one
//!   person's memories, or a project's. A memory learned in a direct message is
//!   private: it is recalled in groups only once it is marked shareable.
//! - **Index** ([`index`]): vectors and texts searched in process (the embedded
//!   default) behind [`index::MemoryIndex`], so pgvector can slot in.
//! - **Ranking** ([`rank`]): vector similarity and keyword relevance fused into one
//!   order, with caps per kind and a token budget.

pub mod decide;
pub mod eval;
pub mod extract;
pub mod index;
/// Reading JSON out of what a model wrote (shared with every caller that asks a model for JSON).
pub use clara_llm::json;
pub mod rank;
pub mod recall;
mod rook;

pub use rook::{
    ExportedMemory, LearnReport, MemoryError, Origin, RecallRequest, Recalled, Rook, RookConfig,
    scopes_of,
};
