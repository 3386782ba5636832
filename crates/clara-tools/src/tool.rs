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
    /// Where a running tool reports live output and files for the person;
    /// `None` when nobody listens (tests, the benchmark). Set per call by the
    /// reply that runs it, never sent across processes.
    #[serde(skip)]
    pub sideband: Option<ToolSideband>,
}

/// Something a running tool hands to the reply besides its result.
#[derive(Debug)]
pub enum ToolEvent {
    /// What the tool printed lately (its tail when long), shown live.
    Progress {
        /// The call it belongs to.
        call_id: String,
        /// The tool's namespaced name.
        tool: String,
        /// The output so far.
        text: String,
    },
    /// A file to send the person as part of the reply.
    File {
        /// The call it belongs to.
        call_id: String,
        /// The file.
        file: clara_core::FileBlob,
        /// A line to show with it.
        caption: Option<String>,
    },
}

/// A running call's line to the reply that runs it: live output and files
/// for the person. Sending never blocks and never fails the tool: when the
/// reply has gone, the event is dropped.
#[derive(Clone)]
pub struct ToolSideband {
    events: tokio::sync::mpsc::UnboundedSender<ToolEvent>,
    call_id: String,
    tool: String,
}

impl std::fmt::Debug for ToolSideband {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSideband")
            .field("call_id", &self.call_id)
            .field("tool", &self.tool)
            .finish_non_exhaustive()
    }
}

impl ToolSideband {
    /// The sideband of call `call_id` of `tool`, reporting into `events`.
    pub fn new(
        events: tokio::sync::mpsc::UnboundedSender<ToolEvent>,
        call_id: impl Into<String>,
        tool: impl Into<String>,
    ) -> Self {
        Self {
            events,
            call_id: call_id.into(),
            tool: tool.into(),
        }
    }

    /// Shows `text` (the output so far, or its tail) as the tool's live output.
    pub fn progress(&self, text: impl Into<String>) {
        let _ = self.events.send(ToolEvent::Progress {
            call_id: self.call_id.clone(),
            tool: self.tool.clone(),
            text: text.into(),
        });
    }

    /// Sends `file` to the person with the reply.
    pub fn send_file(&self, file: clara_core::FileBlob, caption: Option<String>) {
        let _ = self.events.send(ToolEvent::File {
            call_id: self.call_id.clone(),
            file,
            caption,
        });
    }
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

/// What a tool does to the world, from least to most consequential: the
/// default policy allows [`Effect::Read`] and asks about the rest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Only reads (the time, a search, a file read inside the workspace).
    Read,
    /// Runs code or changes files only inside the person's own sandbox, which
    /// has no network and sees nothing of the host: allowed without asking,
    /// because nothing it does crosses the sandbox.
    Sandboxed,
    /// Changes something Clara keeps or the owner's files.
    Write,
    /// Runs code or commands.
    Execute,
    /// Sends or publishes something to someone else (a message, a mail, a
    /// comment, a POST): what an injected instruction would use to leak.
    Send,
    /// Spends money.
    Spend,
}

/// What Clara knows of a tool for deciding whether it may run without asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolTraits {
    /// What it does to the world. A tool that does not say is taken to write.
    pub effect: Effect,
    /// Whether what it returns comes from outside Clara (web pages, mail, an
    /// MCP server): such results are wrapped as data, and once a reply has
    /// read one, tools that send need approval for the rest of the reply.
    pub untrusted_output: bool,
    /// For a tool whose definition comes from outside (an MCP server): SHA-256
    /// (hex) of its name, description and input schema, pinned when first
    /// allowed. `None` for Clara's own tools.
    pub definition_sha256: Option<String>,
}

impl Default for ToolTraits {
    fn default() -> Self {
        Self {
            effect: Effect::Write,
            untrusted_output: false,
            definition_sha256: None,
        }
    }
}

impl ToolTraits {
    /// A tool of Clara's own that only reads.
    pub fn read_only() -> Self {
        Self {
            effect: Effect::Read,
            ..Self::default()
        }
    }
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
    /// What it does to the world, for the approval policy. The default is the
    /// careful one: it writes, and its output is Clara's own.
    fn traits(&self) -> ToolTraits {
        ToolTraits::default()
    }
    /// How long one call may take, when it needs longer (or shorter) than the
    /// registry's limit for every tool: a sandbox run may take minutes.
    fn timeout(&self) -> Option<std::time::Duration> {
        None
    }
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
