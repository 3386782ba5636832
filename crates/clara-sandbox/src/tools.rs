//! The tools: code runs in the sandbox (server `code`) and the workspace's
//! files (server `files`).
//!
//! - `code__python` runs a Python program (saved as
//!   `/workspace/.clara/runs/<id>.py`, run with `python3`), `code__shell` a
//!   command (`sh -c`). Output streams to the person while it runs
//!   ([`ToolSideband::progress`](clara_tools::ToolSideband::progress)); the
//!   model gets how it ended, the head and tail of its output, and the files
//!   it created or changed. Both are [`Effect::Sandboxed`] while the sandbox
//!   has no network; with the owner's network setting on they are
//!   [`Effect::Execute`] (a run can then reach outside, so it asks) and their
//!   output is untrusted.
//! - `files__read_file`, `files__list_files` ([`Effect::Read`]),
//!   `files__write_file` and `files__send_file` ([`Effect::Sandboxed`]) act
//!   on the host side of the workspace, through
//!   [`Workspaces`](crate::workspace::Workspaces), which keeps them inside it.
//!
//! Every tool works in the workspace of the person Clara is answering
//! ([`ToolContext::user`]); a call without one is refused.

mod code;
mod files;

pub use code::{CodeConfig, CodeTool, Language};
pub use files::{FilesConfig, ListFilesTool, ReadFileTool, SendFileTool, WriteFileTool};

use crate::run::Sandbox;
use crate::workspace::{WorkspaceError, Workspaces};
use clara_core::UserId;
use clara_tools::{Effect, Tool, ToolContext, ToolError};
use std::sync::Arc;

/// The server of the code tools: `code__python`, `code__shell`.
pub const CODE_SERVER: &str = "code";
/// The server of the file tools: `files__read_file`, `files__send_file`…
pub const FILES_SERVER: &str = "files";

/// `code__python` and `code__shell`, running in `sandbox`.
pub fn code_tools(
    sandbox: Arc<dyn Sandbox>,
    workspaces: Workspaces,
    config: CodeConfig,
) -> Vec<Arc<dyn Tool>> {
    let shared = Arc::new(code::Shared::new(sandbox, workspaces, config));
    vec![
        Arc::new(CodeTool::new(Language::Python, Arc::clone(&shared))),
        Arc::new(CodeTool::new(Language::Shell, shared)),
    ]
}

/// `files__read_file`, `files__write_file`, `files__list_files` and
/// `files__send_file`.
pub fn file_tools(workspaces: Workspaces, config: FilesConfig) -> Vec<Arc<dyn Tool>> {
    let shared = Arc::new(files::Shared { workspaces, config });
    vec![
        Arc::new(ReadFileTool(Arc::clone(&shared))),
        Arc::new(WriteFileTool(Arc::clone(&shared))),
        Arc::new(ListFilesTool(Arc::clone(&shared))),
        Arc::new(SendFileTool(shared)),
    ]
}

/// The person whose workspace a call works in.
fn user_of(context: &ToolContext) -> Result<UserId, ToolError> {
    context.user.ok_or_else(|| {
        ToolError::Failed("No workspace: this conversation has no person.".to_owned())
    })
}

/// A workspace error as the model reads it.
fn failed(error: WorkspaceError) -> ToolError {
    ToolError::Failed(error.to_string())
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, WorkspaceError> + Send + 'static,
) -> Result<T, ToolError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(failed),
        Err(_) => Err(ToolError::Failed(
            "The workspace could not be used: the file task failed.".to_owned(),
        )),
    }
}

/// The effect of a tool that stays in the sandbox: [`Effect::Sandboxed`],
/// or [`Effect::Execute`] once the sandbox can reach the network.
fn sandboxed_unless(network: bool) -> Effect {
    if network {
        Effect::Execute
    } else {
        Effect::Sandboxed
    }
}

/// A string argument.
fn string_arg<'a>(arguments: &'a serde_json::Value, key: &str) -> Result<&'a str, ToolError> {
    arguments
        .get(key)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| ToolError::InvalidArguments(format!("`{key}` (a string) is required")))
}

/// An optional string argument.
fn optional_string<'a>(
    arguments: &'a serde_json::Value,
    key: &str,
) -> Result<Option<&'a str>, ToolError> {
    match arguments.get(key) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ToolError::InvalidArguments(format!(
            "`{key}` must be a string"
        ))),
    }
}
