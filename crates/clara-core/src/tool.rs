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
