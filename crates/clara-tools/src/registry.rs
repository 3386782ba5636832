//! The registry: the one way a model's tool call reaches a tool.

use async_trait::async_trait;
use clara_core::tool::namespaced;
use clara_core::{ChannelKind, ConversationId, ProjectId, ThoughtId, ToolCall, ToolSpec, UserId};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

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

/// Every tool Clara can offer, by namespaced name.
#[derive(Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    timeout: Duration,
    max_result_chars: usize,
}

impl Default for ToolRegistry {
    fn default() -> Self {
        Self::new(Duration::from_secs(30), 8_000)
    }
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.tools.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ToolRegistry {
    /// An empty registry; each call gets `timeout`, each result is cut to
    /// `max_result_chars`.
    pub fn new(timeout: Duration, max_result_chars: usize) -> Self {
        Self {
            tools: BTreeMap::new(),
            timeout,
            max_result_chars: max_result_chars.max(64),
        }
    }

    /// Adds `tool` as `{server}__{name}`, replacing one of the same name.
    pub fn register(&mut self, server: &str, tool: Arc<dyn Tool>) {
        self.tools.insert(namespaced(server, tool.name()), tool);
    }

    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The specs to offer the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|(name, tool)| ToolSpec {
                name: name.clone(),
                description: tool.description().to_owned(),
                parameters: tool.parameters(),
            })
            .collect()
    }

    /// Runs one call. Never fails: an unknown tool, bad JSON, a tool error or a
    /// timeout becomes a result that tells the model what went wrong.
    pub async fn run(&self, call: &ToolCall, context: &ToolContext) -> ToolOutcome {
        let outcome = |content: String, ok: bool| ToolOutcome {
            call_id: call.id.clone(),
            name: call.name.clone(),
            content,
            ok,
        };
        let Some(tool) = self.tools.get(&call.name) else {
            let known: Vec<_> = self.tools.keys().map(String::as_str).collect();
            return outcome(
                format!(
                    "Error: there is no tool named {:?}. Available tools: {}.",
                    call.name,
                    known.join(", ")
                ),
                false,
            );
        };
        let raw = if call.arguments.trim().is_empty() {
            "{}"
        } else {
            call.arguments.as_str()
        };
        let arguments = match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(v @ serde_json::Value::Object(_)) => v,
            Ok(other) => {
                return outcome(
                    format!("Error: the arguments must be a JSON object, got {other}."),
                    false,
                );
            }
            Err(e) => {
                return outcome(
                    format!(
                        "Error: the arguments are not valid JSON ({e}). Call the tool again with valid JSON."
                    ),
                    false,
                );
            }
        };
        match tokio::time::timeout(self.timeout, tool.call(arguments, context)).await {
            Ok(Ok(result)) => outcome(truncate(&result, self.max_result_chars), true),
            Ok(Err(error)) => outcome(format!("Error: {error}"), false),
            Err(_) => outcome(
                format!(
                    "Error: the tool did not finish within {} seconds.",
                    self.timeout.as_secs()
                ),
                false,
            ),
        }
    }
}

/// Cuts `text` to `max` characters, saying so, so the model knows it saw a part.
fn truncate(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let note = format!(
        "\n[… result cut: {count} characters, showing the first {}]",
        max.saturating_sub(64)
    );
    let kept: String = text.chars().take(max.saturating_sub(64)).collect();
    kept + &note
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Echo;
    #[async_trait]
    impl Tool for Echo {
        fn name(&self) -> &str {
            "echo"
        }
        fn description(&self) -> &str {
            "Repeats its text."
        }
        fn parameters(&self) -> serde_json::Value {
            json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})
        }
        async fn call(
            &self,
            args: serde_json::Value,
            _: &ToolContext,
        ) -> Result<String, ToolError> {
            match args.get("text").and_then(|t| t.as_str()) {
                Some("slow") => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok("late".into())
                }
                Some(t) => Ok(t.to_owned()),
                None => Err(ToolError::InvalidArguments("`text` is required".into())),
            }
        }
    }

    fn registry() -> ToolRegistry {
        let mut r = ToolRegistry::new(Duration::from_millis(100), 100);
        r.register("test", Arc::new(Echo));
        r
    }

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments: args.into(),
        }
    }

    #[tokio::test]
    async fn names_are_namespaced_and_calls_run() {
        let r = registry();
        assert_eq!(r.specs()[0].name, "test__echo");
        let out = r
            .run(
                &call("test__echo", r#"{"text":"hi"}"#),
                &ToolContext::default(),
            )
            .await;
        assert_eq!(
            (out.content.as_str(), out.ok, out.call_id.as_str()),
            ("hi", true, "c1")
        );
    }

    #[tokio::test]
    async fn every_failure_is_a_result_the_model_can_read() {
        let r = registry();
        let ctx = ToolContext::default();
        let bad_json = r.run(&call("test__echo", r#"{"text": "#), &ctx).await;
        assert!(
            !bad_json.ok && bad_json.content.contains("not valid JSON"),
            "{}",
            bad_json.content
        );
        let not_object = r.run(&call("test__echo", "[1]"), &ctx).await;
        assert!(!not_object.ok && not_object.content.contains("JSON object"));
        let unknown = r.run(&call("nope", "{}"), &ctx).await;
        assert!(!unknown.ok && unknown.content.contains("test__echo"));
        let failed = r.run(&call("test__echo", "{}"), &ctx).await;
        assert_eq!(
            failed.content,
            "Error: invalid arguments: `text` is required"
        );
        let slow = r.run(&call("test__echo", r#"{"text":"slow"}"#), &ctx).await;
        assert!(!slow.ok && slow.content.contains("did not finish"));
    }

    #[tokio::test]
    async fn long_results_are_cut_and_say_so() {
        let r = registry();
        let out = r
            .run(
                &call("test__echo", &json!({"text": "x".repeat(500)}).to_string()),
                &ToolContext::default(),
            )
            .await;
        assert!(out.ok);
        assert!(
            out.content.chars().count() <= 100 + 60,
            "{}",
            out.content.len()
        );
        assert!(out.content.contains("result cut: 500 characters"));
    }
}
