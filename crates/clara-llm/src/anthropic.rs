//! Anthropic's Messages API (`POST /v1/messages` with `stream: true`).
//!
//! The prompt is reshaped to what the API insists on: system text goes in the
//! top-level `system` field (marked for prompt caching, so the stable persona and
//! memories are read from cache on later turns), messages alternate `user` and
//! `assistant` (consecutive same-role messages are merged), tool results are
//! `tool_result` blocks inside a `user` message, and the first message is a `user`
//! one: a window that starts with Clara's message gets a short placeholder user turn
//! in front, rather than losing that message.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use base64::Engine;
use clara_core::{ChatMessage, Image, Role, ToolCall};
use futures::TryStreamExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::http::{
    HttpCore, body_detail, endpoint_url, invalid, redact_url_text, sensitive_header,
    temperature_json,
};
use crate::sse::{Decoder, Frame, Step, decode_stream, sse_frames};
use crate::tool_calls::{arguments_object, parameters_schema};
use crate::{
    ChatProvider, ChatRequest, ChatStream, LlmError, RetryPolicy, Secret, StreamEvent, Timeouts,
    Usage,
};

/// The API version Clara speaks (sent as `anthropic-version`).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// The user turn put in front of a window that starts with Clara's message.
const OPENING_USER_TURN: &str = "(continuing our conversation)";

/// Settings of an [`Anthropic`] provider.
#[derive(Clone)]
pub struct AnthropicConfig {
    /// The API root, default `https://api.anthropic.com`; `/v1/messages` is appended.
    /// Proxies (`ANTHROPIC_BASE_URL`) may add a path prefix; a trailing `/` or `/v1`
    /// is tolerated.
    pub base_url: String,
    /// Sent as `x-api-key`.
    pub api_key: Secret,
    /// The model used when a request names none, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// `max_tokens` when a request sets none (the API requires one).
    pub max_tokens: u32,
    /// Retries before the answer starts.
    pub retry: RetryPolicy,
    /// Connect, first-byte and idle timeouts.
    pub timeouts: Timeouts,
    /// Mark the system prompt `cache_control: ephemeral`, so repeated turns read the
    /// stable prefix (persona, memories) from Anthropic's prompt cache.
    pub prompt_caching: bool,
}

impl AnthropicConfig {
    /// Anthropic's API root.
    pub const DEFAULT_BASE_URL: &'static str = "https://api.anthropic.com";
    /// `max_tokens` unless set otherwise.
    pub const DEFAULT_MAX_TOKENS: u32 = 4096;

    /// The default endpoint with this key and model, prompt caching on.
    pub fn new(api_key: impl Into<Secret>, model: impl Into<String>) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            api_key: api_key.into(),
            model: model.into(),
            max_tokens: Self::DEFAULT_MAX_TOKENS,
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            prompt_caching: true,
        }
    }
}

/// By hand for one field: `base_url` may carry credentials (user info, a query
/// key), so it is shown without them; the key is a [`Secret`].
impl fmt::Debug for AnthropicConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AnthropicConfig")
            .field("base_url", &redact_url_text(&self.base_url))
            .field("api_key", &self.api_key)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field("prompt_caching", &self.prompt_caching)
            .finish()
    }
}

/// A chat provider speaking Anthropic's Messages API.
#[derive(Debug)]
pub struct Anthropic {
    http: HttpCore,
    model: String,
    max_tokens: u32,
    prompt_caching: bool,
}

impl Anthropic {
    /// Checks the config and builds the HTTP client. Fails with
    /// [`LlmError::InvalidConfig`] naming the bad setting.
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let base = config.base_url.trim().trim_end_matches('/');
        let base = base.strip_suffix("/v1").unwrap_or(base);
        let endpoint = endpoint_url(base, "/v1/messages", AnthropicConfig::DEFAULT_BASE_URL)?;
        let model = config.model.trim().to_owned();
        if model.is_empty() {
            return Err(invalid("model", "is empty"));
        }
        if config.api_key.is_blank() {
            return Err(invalid("api_key", "is empty (set ANTHROPIC_API_KEY)"));
        }
        if config.max_tokens == 0 {
            return Err(invalid("max_tokens", "must be at least 1"));
        }
        let mut headers = HeaderMap::new();
        sensitive_header(
            &mut headers,
            "api_key",
            "x-api-key",
            config.api_key.expose(),
        )
        .map_err(|_| {
            invalid(
                "api_key",
                "contains characters that cannot be sent in an HTTP header",
            )
        })?;
        sensitive_header(
            &mut headers,
            "headers",
            "anthropic-version",
            ANTHROPIC_VERSION,
        )?;
        let http = HttpCore::new(
            endpoint,
            headers,
            Some(config.api_key),
            config.retry,
            config.timeouts,
        )?;
        Ok(Self {
            http,
            model,
            max_tokens: config.max_tokens,
            prompt_caching: config.prompt_caching,
        })
    }

    fn body(&self, request: &ChatRequest, model: &str) -> Value {
        let system = request
            .messages
            .iter()
            .filter(|m| m.role == Role::System && !m.content.trim().is_empty())
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n\n");
        let mut body = json!({
            "model": model,
            "max_tokens": request.max_tokens.unwrap_or(self.max_tokens),
            "messages": messages_json(&request.messages),
            "stream": true,
        });
        if !system.is_empty() {
            body["system"] = if self.prompt_caching {
                json!([{ "type": "text", "text": system, "cache_control": { "type": "ephemeral" } }])
            } else {
                json!(system)
            };
        }
        if let Some(temperature) = request.temperature {
            body["temperature"] = temperature_json(temperature);
        }
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "name": t.name,
                        "description": t.description,
                        "input_schema": parameters_schema(&t.parameters),
                    })
                })
                .collect();
            body["tools"] = Value::Array(tools);
        }
        body
    }

    fn status_error(
        &self,
        status: StatusCode,
        body: &str,
        retry_after: Option<Duration>,
        model: &str,
    ) -> LlmError {
        let kind = serde_json::from_str::<Value>(body)
            .ok()
            .and_then(|v| {
                v.pointer("/error/type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        let detail = body_detail(status, body, &self.http);
        let status = status.as_u16();
        match (status, kind.as_str()) {
            (401, _) | (_, "authentication_error") => LlmError::Unauthorized {
                key_setting: Some("ANTHROPIC_API_KEY"),
            },
            (403, _) | (_, "permission_error") => LlmError::Forbidden,
            (404, _) | (_, "not_found_error") => LlmError::NotFound {
                model: model.to_owned(),
                detail,
            },
            (429, _) | (_, "rate_limit_error") => LlmError::RateLimited { retry_after },
            (503 | 529, _) | (_, "overloaded_error") => LlmError::Overloaded,
            (408 | 409, _) => LlmError::Server { status },
            (500..=599, _) => LlmError::Server { status },
            // 400 invalid_request_error, 413 request_too_large, 402 billing_error.
            _ => LlmError::BadRequest { status, detail },
        }
    }
}

/// The conversation as Anthropic messages: alternating roles, content blocks.
fn messages_json(messages: &[ChatMessage]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m.role {
            Role::System => continue,
            Role::User => {
                // Images first: Anthropic recommends them before the question about them.
                let mut blocks: Vec<Value> = m.images.iter().map(image_block).collect();
                if !m.content.trim().is_empty() {
                    blocks.push(json!({ "type": "text", "text": m.content }));
                }
                ("user", blocks)
            }
            Role::Assistant => {
                let mut blocks = Vec::new();
                // Empty text blocks are rejected; trailing whitespace in a final
                // assistant turn is too.
                let text = m.content.trim_end();
                if !text.is_empty() {
                    blocks.push(json!({ "type": "text", "text": text }));
                }
                for call in &m.tool_calls {
                    blocks.push(json!({
                        "type": "tool_use",
                        "id": call.id,
                        "name": call.name,
                        "input": arguments_object(&call.arguments),
                    }));
                }
                ("assistant", blocks)
            }
            Role::Tool => {
                let block = match &m.tool_call_id {
                    Some(id) => {
                        json!({ "type": "tool_result", "tool_use_id": id, "content": m.content })
                    }
                    None => {
                        json!({ "type": "text", "text": format!("Tool result: {}", m.content) })
                    }
                };
                ("user", vec![block])
            }
        };
        if blocks.is_empty() {
            continue;
        }
        match out.last_mut() {
            Some((last, existing)) if *last == role => existing.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    if out.first().is_none_or(|(role, _)| *role != "user") {
        out.insert(
            0,
            (
                "user",
                vec![json!({ "type": "text", "text": OPENING_USER_TURN })],
            ),
        );
    }
    out.into_iter()
        .map(|(role, mut blocks)| {
            // Tool results must open the user turn that answers the tool calls.
            blocks.sort_by_key(|b| b.get("type").and_then(Value::as_str) != Some("tool_result"));
            json!({ "role": role, "content": blocks })
        })
        .collect()
}

fn image_block(image: &Image) -> Value {
    match image {
        Image::Url { url } => json!({ "type": "image", "source": { "type": "url", "url": url } }),
        Image::Bytes { media_type, data } => json!({
            "type": "image",
            "source": {
                "type": "base64",
                "media_type": media_type,
                "data": base64::engine::general_purpose::STANDARD.encode(data),
            },
        }),
    }
}

/// Anthropic's stop reasons in the words the rest of Clara uses (OpenAI's).
fn stop_reason(reason: &str) -> String {
    match reason {
        "end_turn" | "stop_sequence" => "stop",
        "max_tokens" => "length",
        "tool_use" => "tool_calls",
        other => other,
    }
    .to_owned()
}

/// A `tool_use` block being streamed.
#[derive(Debug, Default)]
struct ToolBlock {
    id: String,
    name: String,
    /// `partial_json` pieces so far.
    json: String,
    /// The `input` of `content_block_start`, used when no piece follows.
    initial: Option<Value>,
}

impl ToolBlock {
    fn into_call(self) -> ToolCall {
        let arguments = if !self.json.trim().is_empty() {
            self.json
        } else {
            match self.initial {
                Some(v @ Value::Object(_)) => v.to_string(),
                _ => "{}".to_owned(),
            }
        };
        ToolCall {
            id: self.id,
            name: self.name,
            arguments,
        }
    }
}

/// The Messages streaming events.
#[derive(Debug, Default)]
struct AnthropicDecoder {
    input_tokens: Option<u32>,
    output_tokens: Option<u32>,
    stop_reason: Option<String>,
    tools: HashMap<u64, ToolBlock>,
    /// Tool blocks by start order, so unclosed ones flush in order.
    order: Vec<u64>,
}

fn count(value: Option<&Value>) -> Option<u32> {
    value
        .and_then(Value::as_u64)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
}

impl AnthropicDecoder {
    /// Prompt tokens: fresh, plus written to and read from the cache.
    fn read_input(&mut self, usage: &Value) {
        let parts = [
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
        ];
        if usage.get("input_tokens").is_some_and(|v| !v.is_null()) {
            let total = parts
                .iter()
                .filter_map(|p| count(usage.get(*p)))
                .fold(0u32, u32::saturating_add);
            self.input_tokens = Some(total);
        }
        if let Some(n) = count(usage.get("output_tokens")) {
            self.output_tokens = Some(n);
        }
    }

    fn emit_tool(&mut self, index: u64, out: &mut VecDeque<StreamEvent>) {
        if let Some(block) = self.tools.remove(&index) {
            self.order.retain(|i| *i != index);
            out.push_back(StreamEvent::ToolCall(block.into_call()));
        }
    }
}

impl Decoder for AnthropicDecoder {
    fn frame(&mut self, frame: &Frame, out: &mut VecDeque<StreamEvent>) -> Result<Step, LlmError> {
        if frame.data.trim().is_empty() {
            return Ok(Step::Continue);
        }
        let data: Value = serde_json::from_str(&frame.data).map_err(|e| LlmError::Malformed {
            detail: format!("{e} in event {:?}", crate::error::truncate(&frame.data, 80)),
        })?;
        // The `type` field is authoritative; the SSE event name is a fallback.
        let kind = data
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(frame.event.as_str());
        let index = data.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                if let Some(usage) = data.pointer("/message/usage") {
                    self.read_input(usage);
                }
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_use") => {
                        let text = |f: &str| {
                            block
                                .get(f)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        self.tools.insert(
                            index,
                            ToolBlock {
                                id: text("id"),
                                name: text("name"),
                                json: String::new(),
                                initial: block
                                    .get("input")
                                    .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                                    .cloned(),
                            },
                        );
                        self.order.push(index);
                    }
                    Some("text") => {
                        let text = block
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if !text.is_empty() {
                            out.push_back(StreamEvent::Delta(text.to_owned()));
                        }
                    }
                    // Thinking and server-tool blocks are not part of the answer.
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if !text.is_empty() {
                            out.push_back(StreamEvent::Delta(text.to_owned()));
                        }
                    }
                    Some("input_json_delta") => {
                        let part = delta
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if let Some(block) = self.tools.get_mut(&index) {
                            block.json.push_str(part);
                        }
                    }
                    // thinking_delta, signature_delta, citations_delta.
                    _ => {}
                }
            }
            "content_block_stop" => self.emit_tool(index, out),
            "message_delta" => {
                if let Some(reason) = data.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(stop_reason(reason));
                }
                if let Some(usage) = data.get("usage") {
                    // Counts here are cumulative (input ones only on newer API versions).
                    self.read_input(usage);
                }
            }
            "message_stop" => {
                // Blocks never closed are still whole by now.
                for index in self.order.clone() {
                    self.emit_tool(index, out);
                }
                let usage =
                    (self.input_tokens.is_some() || self.output_tokens.is_some()).then(|| Usage {
                        input_tokens: self.input_tokens.unwrap_or(0),
                        output_tokens: self.output_tokens.unwrap_or(0),
                        cost_usd: None,
                    });
                out.push_back(StreamEvent::Finished {
                    reason: self.stop_reason.take(),
                    usage,
                });
                return Ok(Step::Done);
            }
            "error" => {
                let error = data.get("error").unwrap_or(&data);
                let kind = error
                    .get("type")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if kind == "overloaded_error" {
                    return Err(LlmError::Overloaded);
                }
                let message = error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error");
                let detail = if kind.is_empty() {
                    message.to_owned()
                } else {
                    format!("{message} ({kind})")
                };
                return Err(LlmError::ProviderError { detail });
            }
            // `ping`, and event types added after this was written.
            _ => {}
        }
        Ok(Step::Continue)
    }

    fn end(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<(), LlmError> {
        Err(LlmError::StreamCut)
    }
}

#[async_trait::async_trait]
impl ChatProvider for Anthropic {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let model = request.model.clone().unwrap_or_else(|| self.model.clone());
        let body = self.body(&request, &model);
        let map =
            |status, text: &str, retry_after| self.status_error(status, text, retry_after, &model);
        let response = self.http.post_json(&body, &model, &map).await?;
        let bytes = response.bytes_stream().map_err(reqwest::Error::without_url);
        Ok(decode_stream(
            sse_frames(bytes),
            self.http.timeouts.idle,
            self.http.secret.clone(),
            AnthropicDecoder::default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::ToolSpec;

    fn provider(base: &str) -> Anthropic {
        let mut config = AnthropicConfig::new("sk-ant-test", "claude-test");
        config.base_url = base.to_owned();
        Anthropic::new(config).unwrap()
    }

    #[test]
    fn endpoint_accepts_prefixes_and_v1() {
        for (base, endpoint) in [
            (
                "https://api.anthropic.com",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://api.anthropic.com/",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://api.anthropic.com/v1",
                "https://api.anthropic.com/v1/messages",
            ),
            (
                "https://proxy.example/anthropic/",
                "https://proxy.example/anthropic/v1/messages",
            ),
        ] {
            assert_eq!(provider(base).http.endpoint.as_str(), endpoint);
        }
        let mut config = AnthropicConfig::new(" ", "m");
        assert!(
            matches!(Anthropic::new(config.clone()), Err(LlmError::InvalidConfig { field, .. }) if field == "api_key")
        );
        config.api_key = Secret::from("k");
        config.max_tokens = 0;
        assert!(Anthropic::new(config).is_err());
    }

    #[test]
    fn body_shape() {
        let p = provider(AnthropicConfig::DEFAULT_BASE_URL);
        let mut user = ChatMessage::user("look");
        user.images = vec![Image::Bytes {
            media_type: "image/jpeg".into(),
            data: vec![255, 216],
        }];
        let calls = vec![
            ToolCall {
                id: "toolu_1".into(),
                name: "a".into(),
                arguments: "{\"x\":1}".into(),
            },
            ToolCall {
                id: "toolu_2".into(),
                name: "b".into(),
                arguments: "not json".into(),
            },
        ];
        let mut request = ChatRequest::new(vec![
            ChatMessage::system("persona"),
            ChatMessage::assistant("Hi! "),
            ChatMessage::system("memories"),
            user,
            ChatMessage::user("and more"),
            ChatMessage::tool_request("checking", calls),
            ChatMessage::tool_result("toolu_1", "one"),
            ChatMessage::tool_result("toolu_2", "two"),
        ]);
        request.tools = vec![ToolSpec {
            name: "a".into(),
            description: "A".into(),
            parameters: json!({"type":"object"}),
        }];
        request.temperature = Some(0.5);
        let body = p.body(&request, "claude-test");
        assert_eq!(body["max_tokens"], 4096);
        assert_eq!(body["stream"], true);
        assert_eq!(body["temperature"], 0.5);
        assert_eq!(
            body["system"],
            json!([{"type":"text","text":"persona\n\nmemories","cache_control":{"type":"ephemeral"}}])
        );
        assert_eq!(
            body["tools"],
            json!([{"name":"a","description":"A","input_schema":{"type":"object"}}])
        );
        assert_eq!(
            body["messages"],
            json!([
                {"role":"user","content":[{"type":"text","text":OPENING_USER_TURN}]},
                {"role":"assistant","content":[{"type":"text","text":"Hi!"}]},
                {"role":"user","content":[
                    {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9g="}},
                    {"type":"text","text":"look"},
                    {"type":"text","text":"and more"},
                ]},
                {"role":"assistant","content":[
                    {"type":"text","text":"checking"},
                    {"type":"tool_use","id":"toolu_1","name":"a","input":{"x":1}},
                    {"type":"tool_use","id":"toolu_2","name":"b","input":{}},
                ]},
                {"role":"user","content":[
                    {"type":"tool_result","tool_use_id":"toolu_1","content":"one"},
                    {"type":"tool_result","tool_use_id":"toolu_2","content":"two"},
                ]},
            ])
        );
        let mut no_cache = AnthropicConfig::new("k", "m");
        no_cache.prompt_caching = false;
        let p = Anthropic::new(no_cache).unwrap();
        let body = p.body(
            &ChatRequest::new(vec![ChatMessage::system("s"), ChatMessage::user("u")]),
            "m",
        );
        assert_eq!(body["system"], "s");
        assert!(body.get("temperature").is_none() && body.get("tools").is_none());
    }

    #[test]
    fn statuses_map_to_errors() {
        let p = provider(AnthropicConfig::DEFAULT_BASE_URL);
        let e = |status: u16, kind: &str| {
            let body = format!(
                r#"{{"type":"error","error":{{"type":"{kind}","message":"m sk-ant-test"}}}}"#
            );
            p.status_error(
                StatusCode::from_u16(status).unwrap(),
                &body,
                Some(Duration::from_secs(2)),
                "claude-test",
            )
        };
        assert!(matches!(
            e(401, "authentication_error"),
            LlmError::Unauthorized {
                key_setting: Some("ANTHROPIC_API_KEY")
            }
        ));
        assert!(matches!(e(403, "permission_error"), LlmError::Forbidden));
        assert!(
            matches!(e(404, "not_found_error"), LlmError::NotFound { model, .. } if model == "claude-test")
        );
        assert!(matches!(
            e(413, "request_too_large"),
            LlmError::BadRequest { status: 413, .. }
        ));
        assert!(matches!(
            e(429, "rate_limit_error"),
            LlmError::RateLimited {
                retry_after: Some(_)
            }
        ));
        assert!(matches!(
            e(500, "api_error"),
            LlmError::Server { status: 500 }
        ));
        assert!(matches!(e(529, "overloaded_error"), LlmError::Overloaded));
        match e(400, "invalid_request_error") {
            LlmError::BadRequest {
                status: 400,
                detail,
            } => {
                assert!(
                    detail.contains('m') && !detail.contains("sk-ant-test"),
                    "{detail}"
                )
            }
            other => panic!("{other:?}"),
        }
    }
}
