//! One MCP server's tool as a Clara [`Tool`]: the call forwarded under the
//! server's own name, the result turned into text for the model.

use async_trait::async_trait;
use clara_tools::policy::{canonical_json, sha256_hex};
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolTraits};
use parking_lot::RwLock;
use rmcp::RoleClient;
use rmcp::model::{CallToolRequestParams, CallToolResult, ContentBlock, ResourceContents};
use rmcp::service::{Peer, ServiceError};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// What every tool of one server shares with its supervisor: the connection
/// of the moment. Tools hold the link, not a connection, so a reply that
/// started before a restart calls the restarted server; a call that was
/// running when the connection broke is never sent again.
pub(crate) struct Link {
    /// The server's name, for messages.
    server: String,
    /// How long one call may take.
    timeout: Duration,
    /// The connected server, or `None` while it is (re)starting or stopped.
    peer: RwLock<Option<Peer<RoleClient>>>,
    /// Rung by a call that saw the connection fail, so the supervisor checks
    /// it at once instead of at the next refresh.
    pub(crate) lost: Notify,
}

impl Link {
    /// A link for `server`, not yet connected.
    pub(crate) fn new(server: &str, timeout: Duration) -> Self {
        Self {
            server: server.to_owned(),
            timeout,
            peer: RwLock::new(None),
            lost: Notify::new(),
        }
    }

    /// Makes `peer` (or nothing) the connection calls use.
    pub(crate) fn set(&self, peer: Option<Peer<RoleClient>>) {
        *self.peer.write() = peer;
    }

    fn peer(&self) -> Option<Peer<RoleClient>> {
        self.peer.read().clone()
    }
}

/// One tool of an MCP server.
pub struct McpTool {
    link: Arc<Link>,
    /// The name offered to the model (after `{server}__`), see [`crate::names`].
    name: String,
    /// The server's own name for it, sent with every call.
    original: String,
    description: String,
    parameters: Value,
    traits: ToolTraits,
}

impl McpTool {
    /// `tool` of the server behind `link`, offered as `name`.
    pub(crate) fn new(link: Arc<Link>, name: String, tool: &rmcp::model::Tool) -> Self {
        let original = tool.name.to_string();
        let description = tool
            .description
            .as_deref()
            .map(str::to_owned)
            .or_else(|| tool.title.clone())
            .unwrap_or_default();
        let parameters = Value::Object((*tool.input_schema).clone());
        let traits = ToolTraits {
            effect: effect(tool.annotations.as_ref()),
            untrusted_output: true,
            definition_sha256: Some(definition_sha256(&original, &description, &parameters)),
        };
        Self {
            link,
            name,
            original,
            description,
            parameters,
            traits,
        }
    }

    /// The server's own name for the tool.
    pub fn original_name(&self) -> &str {
        &self.original
    }
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn parameters(&self) -> Value {
        self.parameters.clone()
    }

    fn traits(&self) -> ToolTraits {
        self.traits.clone()
    }

    async fn call(&self, arguments: Value, _: &ToolContext) -> Result<String, ToolError> {
        let server = &self.link.server;
        let Some(peer) = self.link.peer() else {
            return Err(ToolError::Failed(format!(
                "the MCP server {server} is not running right now (Clara is starting it again); try again in a moment"
            )));
        };
        let mut params = CallToolRequestParams::new(self.original.clone());
        if let Some(arguments) = without_nulls(arguments) {
            params = params.with_arguments(arguments);
        }
        let timeout = self.link.timeout;
        // Dropping the call on timeout sends `notifications/cancelled` (rmcp
        // cancels a dropped request).
        match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Err(_) => Err(ToolError::Failed(format!(
                "the MCP server {server} did not answer in {} s",
                timeout.as_secs()
            ))),
            Ok(Ok(result)) => render(result),
            Ok(Err(ServiceError::McpError(error))) => Err(ToolError::Failed(format!(
                "the MCP server {server} refused the call: {}",
                error.message
            ))),
            Ok(Err(ServiceError::TransportClosed | ServiceError::TransportSend(_))) => {
                self.link.lost.notify_one();
                Err(ToolError::Failed(format!(
                    "the MCP server {server} stopped while running {}; Clara is restarting it. The call was not repeated: it may or may not have taken effect",
                    self.original
                )))
            }
            Ok(Err(other)) => Err(ToolError::Failed(format!(
                "the MCP server {server} failed: {other}"
            ))),
        }
    }
}

/// The arguments without top-level `null`s: models send `null` for optional
/// fields, which strict servers refuse. `None` when nothing is left.
fn without_nulls(arguments: Value) -> Option<serde_json::Map<String, Value>> {
    match arguments {
        Value::Object(mut map) => {
            map.retain(|_, v| !v.is_null());
            Some(map)
        }
        _ => None,
    }
}

/// What the annotations make of a tool: MCP annotations are claims by the
/// server, so they may only make Clara more careful. Everything is taken to
/// write (a `readOnlyHint` does not lower that); `destructiveHint` makes it
/// execute, `openWorldHint` makes it send.
pub(crate) fn effect(annotations: Option<&rmcp::model::ToolAnnotations>) -> Effect {
    let mut effect = Effect::Write;
    if let Some(a) = annotations {
        if a.destructive_hint == Some(true) {
            effect = effect.max(Effect::Execute);
        }
        if a.open_world_hint == Some(true) {
            effect = effect.max(Effect::Send);
        }
    }
    effect
}

/// SHA-256 (hex) of the name, the description and the canonical JSON of the
/// input schema (keys sorted, as the approval policy canonicalises): what a
/// pinned definition is compared by.
pub(crate) fn definition_sha256(name: &str, description: &str, schema: &Value) -> String {
    let definition = Value::Array(vec![
        Value::String(name.to_owned()),
        Value::String(description.to_owned()),
        schema.clone(),
    ]);
    sha256_hex(&canonical_json(&definition))
}

/// A result as the model reads it: text blocks joined, other content named,
/// structured content as JSON when there is no text; `isError` is a failure.
pub(crate) fn render(result: CallToolResult) -> Result<String, ToolError> {
    let parts: Vec<String> = result
        .content
        .iter()
        .map(|block| match block {
            ContentBlock::Text(t) => t.text.clone(),
            ContentBlock::Image(i) => {
                format!("[image: {}, {} bytes]", i.mime_type, base64_len(&i.data))
            }
            ContentBlock::Audio(a) => {
                format!("[audio: {}, {} bytes]", a.mime_type, base64_len(&a.data))
            }
            ContentBlock::Resource(r) => match &r.resource {
                ResourceContents::TextResourceContents { text, .. } => text.clone(),
                ResourceContents::BlobResourceContents { uri, blob, .. } => {
                    format!("[resource: {uri}, {} bytes]", base64_len(blob))
                }
                #[allow(unreachable_patterns)]
                _ => "[a resource of a kind Clara does not read]".to_owned(),
            },
            ContentBlock::ResourceLink(link) => format!("[resource: {}]", link.uri),
            // A kind of content a later protocol adds: named, not dropped silently.
            #[allow(unreachable_patterns)]
            _ => "[content of a kind Clara does not read]".to_owned(),
        })
        .collect();
    let mut text = parts.join("\n");
    if text.trim().is_empty()
        && let Some(structured) = &result.structured_content
    {
        text = structured.to_string();
    }
    if result.is_error == Some(true) {
        if text.trim().is_empty() {
            text = "the tool reported an error without saying which".to_owned();
        }
        return Err(ToolError::Failed(text));
    }
    Ok(text)
}

/// How many bytes `data` (base64) decodes to.
fn base64_len(data: &str) -> usize {
    let data = data.trim_end();
    let padding = data.bytes().rev().take_while(|&b| b == b'=').count();
    (data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1)).saturating_sub(padding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(value: Value) -> CallToolResult {
        serde_json::from_value(value).expect("a CallToolResult")
    }

    #[test]
    fn text_blocks_are_joined_and_other_content_named() {
        let r = result(json!({"content": [
            {"type": "text", "text": "one"},
            {"type": "image", "data": "aGVsbG8=", "mimeType": "image/png"},
            {"type": "resource", "resource": {"uri": "file:///a", "text": "inside"}},
            {"type": "resource_link", "uri": "file:///b", "name": "b"},
            {"type": "text", "text": "two"}
        ]}));
        assert_eq!(
            render(r).unwrap(),
            "one\n[image: image/png, 5 bytes]\ninside\n[resource: file:///b]\ntwo"
        );
    }

    #[test]
    fn structured_content_when_there_is_no_text() {
        let r = result(json!({"content": [], "structuredContent": {"sum": 3}}));
        assert_eq!(render(r).unwrap(), r#"{"sum":3}"#);
    }

    #[test]
    fn is_error_is_a_failure_with_the_servers_text() {
        let r = result(
            json!({"content": [{"type": "text", "text": "Access denied"}], "isError": true}),
        );
        assert_eq!(render(r), Err(ToolError::Failed("Access denied".into())));
        let bare = result(json!({"content": [], "isError": true}));
        assert!(render(bare).is_err());
    }

    #[test]
    fn base64_lengths() {
        assert_eq!(base64_len(""), 0);
        assert_eq!(base64_len("aGVsbG8="), 5);
        assert_eq!(base64_len("aGVsbG8h"), 6);
        assert_eq!(base64_len("aGVsbA=="), 4);
        assert_eq!(base64_len("aGVsbA"), 4);
    }

    #[test]
    fn nulls_are_dropped_at_the_top_only() {
        let args = json!({"a": null, "b": 1, "c": {"d": null}});
        let kept = without_nulls(args).unwrap();
        assert_eq!(Value::Object(kept), json!({"b": 1, "c": {"d": null}}));
    }

    #[test]
    fn annotations_only_make_clara_more_careful() {
        let ann = |v: Value| serde_json::from_value::<rmcp::model::ToolAnnotations>(v).unwrap();
        assert_eq!(effect(None), Effect::Write);
        assert_eq!(
            effect(Some(&ann(json!({"readOnlyHint": true})))),
            Effect::Write
        );
        assert_eq!(
            effect(Some(&ann(json!({"destructiveHint": true})))),
            Effect::Execute
        );
        assert_eq!(
            effect(Some(&ann(
                json!({"destructiveHint": true, "openWorldHint": true})
            ))),
            Effect::Send
        );
        assert_eq!(
            effect(Some(&ann(
                json!({"readOnlyHint": true, "openWorldHint": true})
            ))),
            Effect::Send
        );
    }

    #[test]
    fn the_definition_hash_ignores_key_order_but_not_content() {
        let a = definition_sha256(
            "t",
            "d",
            &json!({"type": "object", "properties": {"x": {}}}),
        );
        let b = definition_sha256(
            "t",
            "d",
            &json!({"properties": {"x": {}}, "type": "object"}),
        );
        assert_eq!(a, b);
        assert_eq!(a.len(), 64);
        assert_ne!(a, definition_sha256("t", "d2", &json!({"type": "object"})));
        assert_ne!(
            a,
            definition_sha256(
                "t2",
                "d",
                &json!({"type": "object", "properties": {"x": {}}})
            )
        );
    }
}
