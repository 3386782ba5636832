//! Recall on the reply path: the memories that go into a thought's prompt.
//!
//! Recall runs inside the reply's task, before the model is asked, and is bounded
//! by a timeout: a slow or failing memory costs the reply its memories, never the
//! reply itself.

use clara_core::context::memory_section;
use clara_core::{ChannelKind, ProjectId, Role, Scope, Thought, UserId};
use clara_llm::ChatRequest;
use clara_memory::{RecallRequest, Recalled, Rook};
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// Whose memories a thought may recall: every recall names its scopes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecallScope {
    /// The person who wrote the thought.
    pub user: UserId,
    /// The conversation's project.
    pub project: Option<ProjectId>,
    /// DM or group: private memories are recalled only in DMs.
    pub channel: ChannelKind,
}

/// What a reply needs to recall memories for its thought.
#[derive(Clone)]
pub struct MemoryRecall {
    /// The memory service.
    pub rook: Rook,
    /// Whose memories.
    pub scope: RecallScope,
    /// How long to wait before going on without memories.
    pub timeout: Duration,
}

impl MemoryRecall {
    /// Recalls memories for `thought` and adds them to `request`'s system message.
    pub async fn into_prompt(self, thought: &Thought, request: &mut ChatRequest) {
        let text = thought.text();
        let started = Instant::now();
        let query = RecallRequest {
            user: self.scope.user,
            project: self.scope.project,
            channel: self.scope.channel,
            text: &text,
        };
        let recalled = match tokio::time::timeout(self.timeout, self.rook.recall(&query)).await {
            Ok(Ok(recalled)) => recalled,
            Ok(Err(error)) => {
                tracing::warn!(thought = %thought.id, %error, "memory recall failed; answering without memories");
                return;
            }
            Err(_) => {
                tracing::warn!(thought = %thought.id, timeout = ?self.timeout, "memory recall timed out; answering without memories");
                return;
            }
        };
        tracing::debug!(thought = %thought.id, memories = recalled.len(), elapsed = ?started.elapsed(), "memories recalled");
        add_memories(request, &recalled);
    }
}

/// Appends the recalled memories to the request's system message (or adds one).
pub fn add_memories(request: &mut ChatRequest, recalled: &[Recalled]) {
    if recalled.is_empty() {
        return;
    }
    let lines: Vec<String> = recalled.iter().map(memory_line).collect();
    let section = memory_section(&lines);
    match request.messages.first_mut() {
        Some(system) if system.role == Role::System => system.content.push_str(&section),
        _ => request.messages.insert(
            0,
            clara_core::ChatMessage::system(section.trim_start().to_owned()),
        ),
    }
}

/// One memory as the model reads it: its kind, and whose it is when it is a project's.
fn memory_line(r: &Recalled) -> String {
    let m = &r.memory;
    match m.scope {
        Scope::User(_) => format!("({}) {}", m.kind, m.text),
        Scope::Project(_) => format!("(project {}) {}", m.kind, m.text),
    }
}
