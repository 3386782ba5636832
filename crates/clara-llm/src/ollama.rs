//! Ollama's native chat API (`POST /api/chat`), streamed as newline-delimited JSON.
//!
//! Preferred over Ollama's OpenAI-compatible `/v1` because it takes `num_ctx` (the
//! context length, which `/v1` cannot set and which defaults small), images as plain
//! base64, and reports tool calls whole.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use base64::Engine;
use clara_core::{ChatMessage, Image, Role, ToolCall};
use futures::TryStreamExt;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::error::truncate;
use crate::http::{
    HttpCore, body_detail, endpoint_url, invalid, redact_url_text, temperature_json,
};
use crate::sse::{Decoder, Frame, Step, decode_stream, ndjson_frames};
use crate::tool_calls::{arguments_object, arguments_text, parameters_schema};
use crate::{
    ChatProvider, ChatRequest, ChatStream, LlmError, RetryPolicy, StreamEvent, Timeouts, Usage,
};

/// Settings of an [`Ollama`] provider.
#[derive(Clone)]
pub struct OllamaConfig {
    /// The server, default `http://127.0.0.1:11434`. A trailing `/`, `/api` or `/v1` is
    /// tolerated (people paste the OpenAI-compatible URL).
    pub base_url: String,
    /// The model used when a request names none, e.g. `llama3.2`.
    pub model: String,
    /// Retries before the answer starts (a cold model load can take a while, so the
    /// first-byte timeout matters more than retries here).
    pub retry: RetryPolicy,
    /// Connect, first-byte and idle timeouts.
    pub timeouts: Timeouts,
    /// The context length to load the model with (`options.num_ctx`); `None` keeps the
    /// server's default.
    pub num_ctx: Option<u32>,
}

impl OllamaConfig {
    /// Where a local Ollama listens.
    pub const DEFAULT_BASE_URL: &'static str = "http://127.0.0.1:11434";

    /// The local server with this model and defaults for everything else.
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            base_url: Self::DEFAULT_BASE_URL.to_owned(),
            model: model.into(),
            retry: RetryPolicy::default(),
            timeouts: Timeouts::default(),
            num_ctx: None,
        }
    }
}

/// By hand for one field: `base_url` may carry credentials (a proxy's basic
/// auth), so it is shown without them.
impl fmt::Debug for OllamaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OllamaConfig")
            .field("base_url", &redact_url_text(&self.base_url))
            .field("model", &self.model)
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field("num_ctx", &self.num_ctx)
            .finish()
    }
}

/// A chat provider speaking Ollama's `/api/chat`.
#[derive(Debug)]
pub struct Ollama {
    http: HttpCore,
    model: String,
    num_ctx: Option<u32>,
}

impl Ollama {
    /// Checks the config and builds the HTTP client. Fails with
    /// [`LlmError::InvalidConfig`] naming the bad setting.
    pub fn new(config: OllamaConfig) -> Result<Self, LlmError> {
        let base = config.base_url.trim().trim_end_matches('/');
        let base = base
            .strip_suffix("/api")
            .or_else(|| base.strip_suffix("/v1"))
            .unwrap_or(base);
        let endpoint = endpoint_url(base, "/api/chat", OllamaConfig::DEFAULT_BASE_URL)?;
        let model = config.model.trim().to_owned();
        if model.is_empty() {
            return Err(invalid("model", "is empty"));
        }
        if config.num_ctx == Some(0) {
            return Err(invalid("num_ctx", "must be at least 1"));
        }
        let http = HttpCore::new(
            endpoint,
            HeaderMap::new(),
            None,
            config.retry,
            config.timeouts,
        )?;
        tracing::debug!(endpoint = %redact_url_text(&config.base_url), "ollama provider ready");
        Ok(Self {
            http,
            model,
            num_ctx: config.num_ctx,
        })
    }

    fn body(&self, request: &ChatRequest, model: &str) -> Value {
        let mut body = json!({
            "model": model,
            "messages": messages_json(&request.messages),
            "stream": true,
        });
        if !request.tools.is_empty() {
            let tools: Vec<Value> = request
                .tools
                .iter()
                .map(|t| {
                    json!({
                        "type": "function",
                        "function": {
                            "name": t.name,
                            "description": t.description,
                            "parameters": parameters_schema(&t.parameters),
                        },
                    })
                })
                .collect();
            body["tools"] = Value::Array(tools);
        }
        let mut options = Map::new();
        if let Some(temperature) = request.temperature {
            options.insert("temperature".into(), temperature_json(temperature));
        }
        if let Some(max_tokens) = request.max_tokens {
            options.insert("num_predict".into(), json!(max_tokens));
        }
        if let Some(num_ctx) = self.num_ctx {
            options.insert("num_ctx".into(), json!(num_ctx));
        }
        if !options.is_empty() {
            body["options"] = Value::Object(options);
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
        let detail = body_detail(status, body, &self.http);
        let status = status.as_u16();
        match status {
            404 => LlmError::NotFound {
                model: model.to_owned(),
                detail: truncate(
                    &format!("{detail}; run `ollama pull {model}` on the server"),
                    300,
                ),
            },
            401 => LlmError::Unauthorized { key_setting: None },
            403 => LlmError::Forbidden,
            429 => LlmError::RateLimited { retry_after },
            // 503 is Ollama's "server busy" (its request queue is full).
            503 => LlmError::Overloaded,
            408 | 409 | 500..=599 => LlmError::Server { status },
            _ => LlmError::BadRequest { status, detail },
        }
    }
}

/// The conversation in Ollama's shape.
fn messages_json(messages: &[ChatMessage]) -> Vec<Value> {
    // Tool results name their tool, which Ollama wants as `tool_name`.
    let names: HashMap<&str, &str> = messages
        .iter()
        .flat_map(|m| &m.tool_calls)
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    messages
        .iter()
        .map(|m| {
            let mut content = m.content.clone();
            let mut message = json!({ "role": m.role.as_str() });
            let mut images = Vec::new();
            for image in &m.images {
                match image {
                    Image::Bytes { data, .. } => {
                        images.push(json!(base64::engine::general_purpose::STANDARD.encode(data)));
                    }
                    // Ollama cannot fetch images; the model at least learns one was there.
                    Image::Url { url } => content.push_str(&format!("\n[image: {url}]")),
                }
            }
            if !images.is_empty() {
                message["images"] = Value::Array(images);
            }
            if m.role == Role::Assistant && !m.tool_calls.is_empty() {
                let calls: Vec<Value> = m
                    .tool_calls
                    .iter()
                    .map(|c| json!({ "function": { "name": c.name, "arguments": arguments_object(&c.arguments) } }))
                    .collect();
                message["tool_calls"] = Value::Array(calls);
            }
            if m.role == Role::Tool
                && let Some(name) = m.tool_call_id.as_deref().and_then(|id| names.get(id))
            {
                message["tool_name"] = json!(name);
            }
            message["content"] = json!(content);
            message
        })
        .collect()
}

/// Ollama's NDJSON chat stream.
#[derive(Debug, Default)]
struct OllamaDecoder {
    /// Calls emitted so far, for made-up ids and the stop reason.
    calls: usize,
}

impl Decoder for OllamaDecoder {
    fn frame(&mut self, frame: &Frame, out: &mut VecDeque<StreamEvent>) -> Result<Step, LlmError> {
        let line: Value = serde_json::from_str(&frame.data).map_err(|e| LlmError::Malformed {
            detail: format!("{e} in line {:?}", truncate(&frame.data, 80)),
        })?;
        if let Some(error) = line.get("error").filter(|e| !e.is_null()) {
            let detail = error
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| error.to_string());
            return Err(LlmError::ProviderError { detail });
        }
        let message = line.get("message").unwrap_or(&Value::Null);
        if let Some(text) = message.get("content").and_then(Value::as_str)
            && !text.is_empty()
        {
            out.push_back(StreamEvent::Delta(text.to_owned()));
        }
        let calls = message.get("tool_calls").and_then(Value::as_array);
        for call in calls.into_iter().flatten() {
            let function = call.get("function").unwrap_or(&Value::Null);
            let Some(name) = function.get("name").and_then(Value::as_str) else {
                continue;
            };
            self.calls += 1;
            let id = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
                .map_or_else(|| format!("call_{}", self.calls), str::to_owned);
            out.push_back(StreamEvent::ToolCall(ToolCall {
                id,
                name: name.to_owned(),
                arguments: arguments_text(function.get("arguments")),
            }));
        }
        if line.get("done").and_then(Value::as_bool) != Some(true) {
            return Ok(Step::Continue);
        }
        let count = |field: &str| {
            line.get(field)
                .and_then(Value::as_u64)
                .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
        };
        let (input, output) = (count("prompt_eval_count"), count("eval_count"));
        let usage = (input.is_some() || output.is_some()).then(|| Usage {
            input_tokens: input.unwrap_or(0),
            output_tokens: output.unwrap_or(0),
            cost_usd: None,
        });
        // Ollama says "stop" after tool calls; the rest of Clara expects OpenAI's word.
        let reason = match line.get("done_reason").and_then(Value::as_str) {
            Some("stop") | None if self.calls > 0 => Some("tool_calls".to_owned()),
            other => other.map(str::to_owned),
        };
        out.push_back(StreamEvent::Finished { reason, usage });
        Ok(Step::Done)
    }

    fn end(&mut self, _out: &mut VecDeque<StreamEvent>) -> Result<(), LlmError> {
        Err(LlmError::StreamCut)
    }
}

#[async_trait::async_trait]
impl ChatProvider for Ollama {
    fn name(&self) -> &str {
        "ollama"
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
            ndjson_frames(bytes),
            self.http.timeouts.idle,
            None,
            OllamaDecoder::default(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clara_core::ToolSpec;

    fn provider(base: &str) -> Ollama {
        let mut config = OllamaConfig::new("llama3.2");
        config.base_url = base.to_owned();
        config.num_ctx = Some(8192);
        Ollama::new(config).unwrap()
    }

    #[test]
    fn endpoint_strips_api_and_v1() {
        for base in [
            "http://127.0.0.1:11434",
            "http://127.0.0.1:11434/",
            "http://127.0.0.1:11434/api",
            "http://127.0.0.1:11434/v1/",
        ] {
            assert_eq!(
                provider(base).http.endpoint.as_str(),
                "http://127.0.0.1:11434/api/chat"
            );
        }
        assert!(
            Ollama::new(OllamaConfig {
                model: " ".into(),
                ..OllamaConfig::new("x")
            })
            .is_err()
        );
    }

    #[test]
    fn body_shape() {
        let p = provider(OllamaConfig::DEFAULT_BASE_URL);
        let mut user = ChatMessage::user("what's this?");
        user.images = vec![Image::Bytes {
            media_type: "image/png".into(),
            data: vec![1, 2, 3],
        }];
        let call = ToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: "{\"city\":\"Oslo\"}".into(),
        };
        let mut request = ChatRequest::new(vec![
            ChatMessage::system("s"),
            user,
            ChatMessage::tool_request("", vec![call]),
            ChatMessage::tool_result("call_1", "sunny"),
        ]);
        request.tools = vec![ToolSpec {
            name: "weather".into(),
            description: "W".into(),
            parameters: json!({"type":"object"}),
        }];
        request.temperature = Some(0.5);
        request.max_tokens = Some(100);
        let body = p.body(&request, "llama3.2");
        assert_eq!(
            body["messages"],
            json!([
                {"role":"system","content":"s"},
                {"role":"user","content":"what's this?","images":["AQID"]},
                {"role":"assistant","content":"","tool_calls":[{"function":{"name":"weather","arguments":{"city":"Oslo"}}}]},
                {"role":"tool","content":"sunny","tool_name":"weather"},
            ])
        );
        assert_eq!(
            body["options"],
            json!({"temperature":0.5,"num_predict":100,"num_ctx":8192})
        );
        assert_eq!(body["tools"][0]["function"]["name"], "weather");
        assert_eq!(body["stream"], true);
        let plain = Ollama::new(OllamaConfig::new("m"))
            .unwrap()
            .body(&ChatRequest::default(), "m");
        assert!(plain.get("options").is_none() && plain.get("tools").is_none());
    }

    #[test]
    fn not_found_names_the_pull() {
        let p = provider(OllamaConfig::DEFAULT_BASE_URL);
        let e = p.status_error(
            StatusCode::NOT_FOUND,
            r#"{"error":"model \"llama3.2\" not found, try pulling it first"}"#,
            None,
            "llama3.2",
        );
        match &e {
            LlmError::NotFound { model, detail } => {
                assert_eq!(model, "llama3.2");
                assert!(detail.contains("ollama pull llama3.2"), "{detail}");
            }
            other => panic!("{other:?}"),
        }
        assert!(e.user_message().contains("ollama pull llama3.2"));
        assert!(matches!(
            p.status_error(StatusCode::SERVICE_UNAVAILABLE, "", None, "m"),
            LlmError::Overloaded
        ));
        assert!(
            matches!(p.status_error(StatusCode::BAD_REQUEST, r#"{"error":"bad"}"#, None, "m"), LlmError::BadRequest { status: 400, detail } if detail == "bad")
        );
    }
}
