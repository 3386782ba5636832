//! The one trait every chat model provider implements, and the types it speaks.

use clara_core::{ChatMessage, ToolCall, ToolSpec};
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::LlmError;

/// What to ask a chat model. Serializable, so a gateway can hand it to a worker.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct ChatRequest {
    /// The model to use; `None` means the provider's configured model.
    pub model: Option<String>,
    /// The prompt, oldest first.
    pub messages: Vec<ChatMessage>,
    /// Upper bound on the answer's length, in tokens; `None` leaves it to the server.
    pub max_tokens: Option<u32>,
    /// Sampling temperature; `None` leaves it to the server.
    pub temperature: Option<f32>,
    /// Tools the model may call; empty for none.
    pub tools: Vec<ToolSpec>,
}

impl ChatRequest {
    /// A request for these messages with the provider's defaults for everything else.
    pub fn new(messages: Vec<ChatMessage>) -> Self {
        Self {
            messages,
            ..Self::default()
        }
    }
}

/// One step of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More answer text, to be appended to what came before.
    Delta(String),
    /// The model asks for a tool. Emitted once per call, complete (the provider's
    /// streamed argument fragments are assembled inside this crate), before
    /// `Finished`.
    ToolCall(ToolCall),
    /// The answer is complete. Always the last item of a successful stream.
    Finished {
        /// Why the model stopped (`"stop"`, `"length"`, …) when the server said.
        reason: Option<String>,
        /// Token counts when the server reported them.
        usage: Option<Usage>,
    },
}

/// Token counts of one exchange, as reported by the server.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct Usage {
    /// Tokens in the prompt.
    pub input_tokens: u32,
    /// Tokens in the answer.
    pub output_tokens: u32,
    /// What the exchange cost, in US dollars, when the provider reports it.
    pub cost_usd: Option<f64>,
}

/// A streamed answer: deltas, then exactly one [`StreamEvent::Finished`], or an error
/// after which nothing more comes.
pub type ChatStream = BoxStream<'static, Result<StreamEvent, LlmError>>;

/// A chat model behind some API.
#[async_trait::async_trait]
pub trait ChatProvider: Send + Sync + 'static {
    /// Which kind of provider this is, e.g. `"openai-compatible"`.
    fn name(&self) -> &str;

    /// The configured default model.
    fn model(&self) -> &str;

    /// Starts a streamed answer.
    ///
    /// Retries (429/5xx/connect errors) happen only here, before the first byte of the
    /// answer; once the stream is returned nothing is retried, because a person may
    /// already be reading the partial answer. Dropping the stream drops the connection.
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError>;

    /// The whole answer as one string (used for session summaries).
    ///
    /// The default collects [`ChatProvider::stream_chat`]'s deltas. An answer with no
    /// text is [`LlmError::Empty`].
    async fn complete(&self, request: ChatRequest) -> Result<String, LlmError> {
        let mut stream = self.stream_chat(request).await?;
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::Delta(delta) => text.push_str(&delta),
                StreamEvent::Finished { .. } => break,
                // A caller that wants tools uses the stream; here they are ignored.
                StreamEvent::ToolCall(_) => {}
            }
        }
        if text.trim().is_empty() {
            return Err(LlmError::Empty);
        }
        Ok(text)
    }
}
