//! Shared test doubles: a scripted chat model and a bag-of-words embedder.

use async_trait::async_trait;
use clara_core::{ChannelKind, ConversationId, MessageId, ProjectId, UserId};
use clara_llm::embed::{EmbedError, Embedder, EmbeddingModel};
use clara_llm::{ChatProvider, ChatRequest, ChatStream, LlmError, StreamEvent};
use clara_memory::{Origin, Rook, RookConfig};
use clara_store::Store;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;

/// A chat model that answers from a script, in order, and records what it was asked.
#[derive(Default)]
pub struct ScriptedLlm {
    answers: Mutex<VecDeque<String>>,
    pub asked: Mutex<Vec<ChatRequest>>,
}

impl ScriptedLlm {
    pub fn new(answers: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.iter().map(|s| s.to_string()).collect()),
            asked: Mutex::default(),
        })
    }

    pub fn calls(&self) -> usize {
        self.asked.lock().len()
    }

    pub fn push(&self, answer: &str) {
        self.answers.lock().push_back(answer.to_owned());
    }
}

#[async_trait]
impl ChatProvider for ScriptedLlm {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "scripted-model"
    }
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        self.asked.lock().push(request);
        let answer = self
            .answers
            .lock()
            .pop_front()
            .expect("the script ran out of answers");
        let events = vec![
            Ok(StreamEvent::Delta(answer)),
            Ok(StreamEvent::Finished {
                reason: Some("stop".into()),
                usage: None,
            }),
        ];
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

/// The fake OpenAI server's bag-of-words embedding, in process: texts sharing words
/// are similar, deterministically, without a model.
pub struct WordsEmbedder {
    model: EmbeddingModel,
}

impl WordsEmbedder {
    pub fn new(name: &str) -> Arc<Self> {
        Arc::new(Self {
            model: EmbeddingModel {
                name: name.to_owned(),
                dim: 64,
            },
        })
    }

    pub fn vector(text: &str) -> Vec<f32> {
        clara_testkit::fake_openai::fake_embedding(text, 64)
    }
}

#[async_trait]
impl Embedder for WordsEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.model
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| Self::vector(t)).collect())
    }
}

pub async fn rook_with(store: Store, llm: Arc<ScriptedLlm>) -> Rook {
    Rook::open(
        store,
        WordsEmbedder::new("test/words"),
        Some(llm),
        RookConfig::default(),
    )
    .await
    .unwrap()
}

pub fn origin(user: UserId, channel: ChannelKind) -> Origin {
    Origin {
        user,
        person: "Ana".into(),
        project: None,
        channel,
        conversation: Some(ConversationId::new()),
        message: Some(MessageId::new()),
        at_ms: 1_790_000_000_000,
    }
}

pub fn in_project(mut origin: Origin, project: ProjectId) -> Origin {
    origin.project = Some(project);
    origin
}
