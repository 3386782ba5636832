//! One tool: what it tells the model about itself, and how it runs.

use async_trait::async_trait;
use clara_core::{ChannelKind, ConversationId, ProjectId, ThoughtId, UserId};

/// Who a tool runs for: tools that touch a person's data must scope by it.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ToolContext {
    /// The person the reply is for, when known.
    pub user: Option<UserId>,
    /// The person's name.
    pub person: String,
    /// The conversation the reply is in.
    pub conversation: Option<ConversationId>,
    /// Whether that conversation is a DM or a group (others may read the answer).
    pub channel: Option<ChannelKind>,
    /// The conversation's project, if it has one.
    pub project: Option<ProjectId>,
    /// The thought being answered.
    pub thought: Option<ThoughtId>,
}

/// Why a tool call failed, in words the model can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments are not what the schema asks for.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// A tool.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Its name within its server (`current_time`).
    fn name(&self) -> &str;
    /// What it does, for the model.
    fn description(&self) -> &str;
    /// A JSON Schema (an object schema) of its arguments.
    fn parameters(&self) -> serde_json::Value;
    /// Runs it.
    async fn call(
        &self,
        arguments: serde_json::Value,
        context: &ToolContext,
    ) -> Result<String, ToolError>;
}

/// The result of one call, ready to go back to the model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOutcome {
    /// The call answered.
    pub call_id: String,
    /// The tool's namespaced name.
    pub name: String,
    /// What the model reads: the result, or the error explained.
    pub content: String,
    /// Whether the tool succeeded.
    pub ok: bool,
}
