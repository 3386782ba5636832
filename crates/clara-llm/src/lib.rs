//! Talks to chat models for Clara: one [`ChatProvider`] trait, and the providers behind it.
//!
//! Everything a provider's wire format implies — request bodies, SSE framing, status
//! codes, retry and timeout rules — stays inside this crate. Callers see a stream of
//! [`StreamEvent`]s and an [`LlmError`] that knows whether it is worth retrying and how
//! to explain itself to a person without leaking a secret.
//!
//! The providers: [`OpenAiCompatible`] (OpenAI, OpenRouter, NanoGPT, Ollama's `/v1`,
//! any custom base URL), [`Anthropic`] (the Messages API, with prompt caching),
//! [`Ollama`] (its native NDJSON API) and, with the `local` feature, `LocalModel`
//! (a small instruct model run in process on the CPU, no key, no server). Tool
//! calls arrive as whole [`StreamEvent::ToolCall`]s whatever the wire format.
//!
//! Sentence embedders sit behind the [`Embedder`] trait ([`embed`]):
//! [`OpenAiEmbedder`] (any OpenAI-compatible `/embeddings` endpoint) and, with the
//! `local` feature, `LocalEmbedder` (all-MiniLM-L6-v2 in process on the CPU).

pub mod anthropic;
pub mod embed;
pub mod error;
pub(crate) mod http;
pub mod json;
#[cfg(feature = "local")]
pub mod local;
pub mod ollama;
pub mod openai;
pub mod provider;
pub mod retry;
pub mod sse;
pub mod tool_calls;

pub use anthropic::{Anthropic, AnthropicConfig};
/// The one secret type of Clara, re-exported where the providers take their keys.
pub use clara_core::Secret;
pub use embed::{EmbedError, Embedder, EmbeddingModel, OpenAiEmbedder, OpenAiEmbedderConfig};
#[cfg(feature = "local")]
pub use embed::{LocalEmbedder, LocalEmbedderConfig};
pub use error::{LlmError, TimeoutPhase};
#[cfg(feature = "local")]
pub use local::{LocalModel, LocalModelConfig};
pub use ollama::{Ollama, OllamaConfig};
pub use openai::{OpenAiCompatible, OpenAiCompatibleConfig, OpenAiFlavor};
pub use provider::{ChatProvider, ChatRequest, ChatStream, StreamEvent, Usage};
pub use retry::{RetryPolicy, Timeouts};
