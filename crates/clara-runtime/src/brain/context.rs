//! What Clara knows of one conversation between thoughts, and the prompt it
//! builds from that for the next one.

use crate::config::EngineConfig;
use clara_core::context::{PromptInput, Turn, assemble_prompt, with_tool_note};
use clara_core::tokens::{EstimatedTokens, TokenCounter};
use clara_core::{ConversationId, EventId, MessageId, Role, Thought, ToolRun};
use clara_llm::ChatRequest;
use clara_store::StoredMessage;
use std::collections::{HashMap, VecDeque};

/// One remembered message of the conversation window.
#[derive(Clone, Debug, PartialEq)]
pub struct CachedTurn {
    /// Who said it.
    pub role: Role,
    /// What was said.
    pub content: String,
    /// When, in Unix milliseconds.
    pub at_ms: i64,
    /// The platform event it came from (user messages).
    pub event: Option<EventId>,
}

impl Turn for CachedTurn {
    fn role(&self) -> Role {
        self.role
    }
    fn content(&self) -> &str {
        &self.content
    }
    fn at_ms(&self) -> i64 {
        self.at_ms
    }
}

impl CachedTurn {
    /// Clara's reply as later prompts show it: what she said, then a note of the
    /// tools the reply used (see [`with_tool_note`]), so the model knows what it
    /// already did.
    pub fn reply(content: &str, tool_runs: &[ToolRun], at_ms: i64) -> Self {
        Self {
            role: Role::Assistant,
            content: with_tool_note(content, tool_runs),
            at_ms,
            event: None,
        }
    }
}

impl From<StoredMessage> for CachedTurn {
    fn from(m: StoredMessage) -> Self {
        Self {
            role: m.role,
            content: m.content,
            at_ms: m.created_at_ms,
            event: m.event_id,
        }
    }
}

/// A remembered message with its prompt cost, counted once when it was recorded.
#[derive(Debug)]
struct Counted {
    turn: CachedTurn,
    tokens: usize,
}

impl Turn for Counted {
    fn role(&self) -> Role {
        self.turn.role
    }
    fn content(&self) -> &str {
        &self.turn.content
    }
    fn at_ms(&self) -> i64 {
        self.turn.at_ms
    }
    fn counted_tokens(&self) -> Option<usize> {
        Some(self.tokens)
    }
}

/// What the brain keeps of one conversation between thoughts, so a prompt is built
/// without reading the store: the window's messages and the last session summary.
///
/// It mirrors the store (the actor writes both), and is rebuilt from the store when
/// the conversation's actor starts.
#[derive(Debug)]
pub struct ConversationContext {
    /// The conversation.
    pub id: ConversationId,
    turns: VecDeque<Counted>,
    /// Counts every message once, and the rest of each prompt with the same rule.
    counter: EstimatedTokens,
    capacity: usize,
    /// The summary of the previous session, if one was written.
    pub summary: Option<String>,
}

impl ConversationContext {
    /// A context from stored messages (oldest first), keeping at most `capacity`;
    /// Clara's messages found in `tool_runs` carry the note of their tools.
    pub fn new(
        id: ConversationId,
        stored: Vec<StoredMessage>,
        tool_runs: &HashMap<MessageId, Vec<ToolRun>>,
        summary: Option<String>,
        capacity: usize,
    ) -> Self {
        let mut ctx = Self {
            id,
            turns: VecDeque::with_capacity(capacity.min(1024)),
            capacity,
            summary,
            counter: EstimatedTokens,
        };
        for m in stored {
            match tool_runs.get(&m.id) {
                Some(runs) if m.role == Role::Assistant => {
                    ctx.record(CachedTurn::reply(&m.content, runs, m.created_at_ms));
                }
                _ => ctx.record(m.into()),
            }
        }
        ctx
    }

    /// Adds a message to the window.
    pub fn record(&mut self, turn: CachedTurn) {
        if self.turns.len() >= self.capacity {
            self.turns.pop_front();
        }
        let tokens = self.counter.count_message(&turn.content);
        self.turns.push_back(Counted { turn, tokens });
    }

    /// Forgets the window (a fresh start); the summary stays.
    pub fn clear(&mut self) {
        self.turns.clear();
    }

    /// The platform events of the remembered messages (to seed de-duplication).
    pub fn events(&self) -> impl Iterator<Item = &EventId> {
        self.turns.iter().filter_map(|t| t.turn.event.as_ref())
    }

    /// How many messages are remembered.
    pub fn len(&self) -> usize {
        self.turns.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.turns.is_empty()
    }

    /// The request that answers `thought`.
    ///
    /// The thought's own messages are already in the window (they are stored as
    /// they arrive); they are left out of the history and sent as the one final
    /// user message instead.
    pub fn request_for(
        &self,
        thought: &Thought,
        config: &EngineConfig,
        now_ms: i64,
    ) -> ChatRequest {
        let history: Vec<&Counted> = self
            .turns
            .iter()
            .filter(|t| {
                t.turn
                    .event
                    .as_ref()
                    .is_none_or(|e| !thought.events.contains(e))
            })
            .collect();
        let now_label = chrono::Utc::now()
            .format("%A %-d %B %Y, %H:%M UTC")
            .to_string();
        let text = thought.text();
        let input = PromptInput {
            persona: &config.persona,
            person: &thought.author.display_name,
            now_label: Some(&now_label),
            summary: self.summary.as_deref(),
            memories: &[],
            history: &history,
            thought: &text,
        };
        let mut prompt = assemble_prompt(&input, &config.window, now_ms, &self.counter);
        if let Some(last) = prompt.messages.last_mut() {
            last.images.clone_from(&thought.images);
        }
        tracing::debug!(thought = %thought.id, window = prompt.window, cut = prompt.cut_for_budget, tokens = prompt.tokens, "prompt built");
        ChatRequest {
            max_tokens: config.max_reply_tokens,
            ..ChatRequest::new(prompt.messages)
        }
    }
}
