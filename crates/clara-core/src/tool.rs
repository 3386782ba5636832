//! Tools as a model sees them: what it may call, and a call it made.

use serde::{Deserialize, Serialize};

/// A tool offered to the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Its name, namespaced `{server}__{tool}` (e.g. `clara__current_time`).
    pub name: String,
    /// What it does, for the model to decide when to call it.
    pub description: String,
    /// A JSON Schema of its arguments (an object schema).
    pub parameters: serde_json::Value,
}

/// A tool call the model made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call, which the result must name.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as the model wrote them: JSON text, possibly invalid, which
    /// the tool loop reports back to the model as a tool error.
    pub arguments: String,
}

/// The separator of a namespaced tool name.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// `{server}__{tool}`.
pub fn namespaced(server: &str, tool: &str) -> String {
    format!("{server}{NAMESPACE_SEPARATOR}{tool}")
}

/// How a tool call was let through, for the record (`clara` and the web page
/// show who approved what).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Permission {
    /// The policy allowed it without asking (a rule, or a read-only tool).
    Policy,
    /// The owner approved it (`always`: a standing grant was made).
    Owner {
        /// Who approved, as `platform:user` (`telegram:12345`).
        owner: String,
        /// Whether it was an "always" grant, or a grant made earlier.
        always: bool,
    },
    /// Refused: by a rule, by the owner, or for want of an answer. The call did
    /// not run.
    Refused {
        /// Why, as the model was told.
        reason: String,
    },
}

/// One tool call of a reply and what came of it: stored with the conversation,
/// so the next prompt sees what was done and the history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolRun {
    /// The model's id of the call.
    pub call_id: String,
    /// The tool, namespaced (`everything__echo`).
    pub name: String,
    /// The arguments, as JSON text.
    pub arguments: String,
    /// What the model read back (already cut to the registry's limit).
    pub result: String,
    /// Whether the tool ran and succeeded.
    pub ok: bool,
    /// How it was let through, or why not.
    pub permission: Permission,
    /// When it started, in Unix milliseconds.
    pub started_at_ms: i64,
    /// How long it took, in milliseconds (0 when it did not run).
    pub duration_ms: u64,
}

/// A standing approval: `tool` may run with exactly the arguments whose hash is
/// `arguments_sha256`, while its definition hashes to `definition_sha256`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolGrant {
    /// The tool, namespaced.
    pub tool: String,
    /// SHA-256 (hex) of the arguments in canonical JSON (keys sorted).
    pub arguments_sha256: String,
    /// SHA-256 (hex) of the tool's definition when granted (empty for tools
    /// whose definition is Clara's own).
    pub definition_sha256: String,
    /// Who granted it, as `platform:user`.
    pub granted_by: String,
    /// When, in Unix milliseconds.
    pub granted_at_ms: i64,
}

/// A tool definition as first allowed (trust on first use): a later definition
/// with another hash blocks the tool until the owner approves it again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolPin {
    /// The tool, namespaced.
    pub tool: String,
    /// SHA-256 (hex) of name, description and input schema.
    pub definition_sha256: String,
    /// When it was pinned, in Unix milliseconds.
    pub pinned_at_ms: i64,
}
