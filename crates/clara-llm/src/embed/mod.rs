//! Sentence embedders: text in, one unit-length vector per text out.
//!
//! Rook stores each vector with the [`EmbeddingModel`] that made it, so vectors of
//! different models are never compared; a change of model re-embeds instead.
//!
//! The embedders: [`OpenAiEmbedder`] (any OpenAI-compatible `POST /embeddings`:
//! OpenAI, Ollama's `/v1`, vLLM, a proxy) and, with the `local` feature,
//! `LocalEmbedder` (all-MiniLM-L6-v2 run in process on the CPU, no key, no server).

#[cfg(feature = "local")]
pub mod local;
pub mod openai;

use async_trait::async_trait;

#[cfg(feature = "local")]
pub use local::{LocalEmbedder, LocalEmbedderConfig};
pub use openai::{OpenAiEmbedder, OpenAiEmbedderConfig};

/// Which model made a vector, and how long its vectors are.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EmbeddingModel {
    /// A stable name, e.g. `local/all-minilm-l6-v2` or `openai/text-embedding-3-small`.
    pub name: String,
    /// The length of every vector it makes.
    pub dim: usize,
}

/// Why texts could not be embedded. Messages never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The model files are missing or unreadable.
    #[error("the embedding model could not be loaded: {0}")]
    Load(String),
    /// The model failed while running.
    #[error("the embedding model failed: {0}")]
    Inference(String),
    /// The embeddings endpoint could not be reached or answered with an error.
    #[error("the embeddings endpoint failed: {0}")]
    Endpoint(String),
    /// The endpoint rejected the key (the setting that holds it is named).
    #[error("the embeddings endpoint rejected the API key; check {key_setting}")]
    Unauthorized {
        /// The setting that holds the key, e.g. `OPENAI_API_KEY`.
        key_setting: String,
    },
    /// The answer had the wrong shape (count, dimension or JSON).
    #[error("the embeddings endpoint answered with something unexpected: {0}")]
    Malformed(String),
}

/// Turns texts into vectors.
///
/// Vectors are L2-normalised, so cosine similarity is a dot product. `embed`
/// returns exactly one vector per input, in input order, each of
/// [`EmbeddingModel::dim`] numbers.
#[async_trait]
pub trait Embedder: Send + Sync + 'static {
    /// The model behind this embedder.
    fn model(&self) -> &EmbeddingModel;

    /// Embeds `texts` (an empty slice gives an empty result).
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError>;

    /// Embeds one text.
    async fn embed_one(&self, text: &str) -> Result<Vec<f32>, EmbedError> {
        let mut vectors = self.embed(&[text.to_owned()]).await?;
        vectors
            .pop()
            .ok_or_else(|| EmbedError::Malformed("no vector for the text".to_owned()))
    }
}

/// Scales `v` to unit length in place (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}
