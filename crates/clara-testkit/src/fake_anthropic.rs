//! A fake Anthropic Messages server (`POST /v1/messages`, streaming only).
//!
//! Streams follow Anthropic's event sequence: `message_start` (with input usage),
//! per content block `content_block_start` / `content_block_delta` (`text_delta` or
//! `input_json_delta`) / `content_block_stop`, a `ping`, `message_delta` (stop reason,
//! output usage) and `message_stop`, each as `event: <type>` + `data: <json>`. Errors
//! use Anthropic's body `{"type":"error","error":{"type","message"}}`. Like the real
//! API, the fake refuses requests without `x-api-key` (401), without
//! `anthropic-version` or `max_tokens`, or whose messages do not start with `user` and
//! alternate (400), so a client that gets the shape wrong fails here too.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::fake_openai::{
    json_error, messages as messages_of, pieces, role, sse_response, status_or_500,
};
use crate::recorder::{Recorder, fake_server};

/// What the fake answers to one Messages request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeAnthropicReply {
    /// `"You said: <last user text>"` as a streamed text block.
    Echo,
    /// This text, streamed word by word in one text block.
    Text(String),
    /// These text deltas, each sent after `delay` (to drop a stream mid-answer).
    Stream {
        /// The text deltas.
        chunks: Vec<String>,
        /// The pause before each.
        delay: Duration,
    },
    /// Text (optional), then one `tool_use` block per call, each call's input streamed
    /// as several `input_json_delta`s; `stop_reason: "tool_use"`. Ids are `toolu_fake<n>`.
    ToolUse {
        /// Text block before the calls (skipped when empty).
        text_before: String,
        /// `(name, input JSON text)` per call.
        calls: Vec<(String, String)>,
    },
    /// An error response with this status and error type, and `retry-after` when set.
    Error {
        /// The HTTP status.
        status: u16,
        /// `error.type`, e.g. `overloaded_error`.
        error_type: String,
        /// `error.message`.
        message: String,
        /// `retry-after` in seconds.
        retry_after: Option<u64>,
    },
    /// Starts streaming `text_before`, then sends an `error` event and ends.
    ErrorEvent {
        /// Text delivered before the error.
        text_before: String,
        /// `error.type` (Anthropic sends `overloaded_error` mid-stream when busy).
        error_type: String,
        /// `error.message`.
        message: String,
    },
    /// Exactly this body as `text/event-stream`.
    Raw(String),
}

impl FakeAnthropicReply {
    /// [`FakeAnthropicReply::Text`] from anything string-like.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// [`FakeAnthropicReply::Error`] with the error type Anthropic uses for `status`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        let error_type = match status {
            400 => "invalid_request_error",
            401 => "authentication_error",
            402 => "billing_error",
            403 => "permission_error",
            404 => "not_found_error",
            413 => "request_too_large",
            429 => "rate_limit_error",
            529 => "overloaded_error",
            _ => "api_error",
        };
        Self::Error {
            status,
            error_type: error_type.to_owned(),
            message: message.into(),
            retry_after: None,
        }
    }
}

struct Shared {
    next_id: AtomicU64,
    recorder: Recorder<FakeAnthropicReply>,
}

fake_server!(
    /// A running fake Anthropic server on `127.0.0.1`; it stops when dropped.
    FakeAnthropic,
    "Messages"
);

impl FakeAnthropic {
    /// Starts a server on a free port. Panics if it cannot bind (this is test code).
    pub async fn start() -> FakeAnthropic {
        let shared = Shared {
            next_id: AtomicU64::new(1),
            recorder: Recorder::new("FakeAnthropic"),
        };
        Self::launch(
            shared,
            0,
            Router::new().route("/v1/messages", post(messages)),
        )
        .await
    }

    /// `http://127.0.0.1:PORT` (no `/v1`), the value for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Queues a reply; queued replies answer requests in arrival order, then [`FakeAnthropicReply::Echo`].
    pub fn push(&self, reply: FakeAnthropicReply) {
        self.shared.recorder.push(reply);
    }
}

async fn messages(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = shared.recorder.record(&headers, &body);

    if headers.get("x-api-key").is_none() {
        return error_response(
            401,
            "authentication_error",
            "x-api-key header is required",
            None,
        );
    }
    if headers.get("anthropic-version").is_none() {
        return error_response(
            400,
            "invalid_request_error",
            "anthropic-version: header is required",
            None,
        );
    }
    let Some(request) = parsed else {
        return error_response(
            400,
            "invalid_request_error",
            "There was an issue with the request body: invalid JSON",
            None,
        );
    };
    if let Err(message) = validate(&request) {
        return error_response(400, "invalid_request_error", &message, None);
    }

    let reply = shared
        .recorder
        .next_reply()
        .unwrap_or(FakeAnthropicReply::Echo);
    let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let answer = Answer {
        id: format!("msg_fake{n:08}"),
        model: request
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or("claude-fake")
            .to_owned(),
        input_tokens: prompt_tokens(&request),
        n,
    };
    let frames = match reply {
        FakeAnthropicReply::Error {
            status,
            error_type,
            message,
            retry_after,
        } => {
            return error_response(status, &error_type, &message, retry_after);
        }
        FakeAnthropicReply::Raw(body) => return sse_response(Body::from(body)),
        FakeAnthropicReply::Echo => {
            let text = format!("You said: {}", last_user_text(&request));
            answer.text(&words(&text), Duration::ZERO)
        }
        FakeAnthropicReply::Text(text) => answer.text(&words(&text), Duration::ZERO),
        FakeAnthropicReply::Stream { chunks, delay } => answer.text(&chunks, delay),
        FakeAnthropicReply::ToolUse { text_before, calls } => answer.tool_use(&text_before, &calls),
        FakeAnthropicReply::ErrorEvent {
            text_before,
            error_type,
            message,
        } => answer.error_event(&text_before, &error_type, &message),
    };
    sse_response(shared.recorder.stream_body(frames))
}

/// The rules of the real API that a client most easily breaks.
fn validate(request: &Value) -> Result<(), String> {
    if request.get("model").and_then(Value::as_str).is_none() {
        return Err("model: Field required".to_owned());
    }
    if request.get("max_tokens").and_then(Value::as_u64).is_none() {
        return Err("max_tokens: Field required".to_owned());
    }
    let messages = request
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("messages: Field required")?;
    if messages.is_empty() {
        return Err("messages: at least one message is required".to_owned());
    }
    let mut previous: Option<&str> = None;
    let mut pending_tool_uses: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        if !matches!(role, "user" | "assistant") {
            return Err(format!(
                "messages.{i}.role: Input should be 'user' or 'assistant'"
            ));
        }
        if i == 0 && role != "user" {
            return Err("messages: first message must use the \"user\" role".to_owned());
        }
        if previous == Some(role) {
            return Err(
                "messages: roles must alternate between \"user\" and \"assistant\"".to_owned(),
            );
        }
        previous = Some(role);
        let blocks: Vec<Value> = match m.get("content") {
            Some(Value::String(s)) if !s.is_empty() => vec![json!({"type": "text", "text": s})],
            Some(Value::Array(blocks)) if !blocks.is_empty() => blocks.clone(),
            _ => {
                return Err(format!(
                    "messages.{i}: all messages must have non-empty content"
                ));
            }
        };
        for block in &blocks {
            match block.get("type").and_then(Value::as_str) {
                Some("text")
                    if block
                        .get("text")
                        .and_then(Value::as_str)
                        .is_none_or(str::is_empty) =>
                {
                    return Err(format!(
                        "messages.{i}: text content blocks must be non-empty"
                    ));
                }
                Some("tool_result") => {
                    let id = block
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !pending_tool_uses.iter().any(|p| p == id) {
                        return Err(format!(
                            "messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {id}"
                        ));
                    }
                }
                _ => {}
            }
        }
        pending_tool_uses = blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
            .filter_map(|b| b.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
    }
    Ok(())
}

struct Answer {
    id: String,
    model: String,
    input_tokens: usize,
    n: u64,
}

fn event(kind: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {kind}\ndata: {data}\n\n"))
}

impl Answer {
    fn start(&self) -> Vec<(Bytes, Duration)> {
        let message = json!({
            "type": "message_start",
            "message": {
                "id": self.id, "type": "message", "role": "assistant", "content": [],
                "model": self.model, "stop_reason": null, "stop_sequence": null,
                "usage": { "input_tokens": self.input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1 },
            },
        });
        vec![(event("message_start", &message), Duration::ZERO)]
    }

    fn text_block(
        index: usize,
        chunks: &[String],
        delay: Duration,
        frames: &mut Vec<(Bytes, Duration)>,
    ) {
        frames.push((event("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})), Duration::ZERO));
        frames.push((event("ping", &json!({"type": "ping"})), Duration::ZERO));
        for chunk in chunks {
            let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": chunk}});
            frames.push((event("content_block_delta", &delta), delay));
        }
        frames.push((
            event(
                "content_block_stop",
                &json!({"type": "content_block_stop", "index": index}),
            ),
            Duration::ZERO,
        ));
    }

    fn finish(frames: &mut Vec<(Bytes, Duration)>, stop_reason: &str, output_tokens: usize) {
        let delta = json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}});
        frames.push((event("message_delta", &delta), Duration::ZERO));
        frames.push((
            event("message_stop", &json!({"type": "message_stop"})),
            Duration::ZERO,
        ));
    }

    fn text(&self, chunks: &[String], delay: Duration) -> Vec<(Bytes, Duration)> {
        let mut frames = self.start();
        Self::text_block(0, chunks, delay, &mut frames);
        Self::finish(&mut frames, "end_turn", chunks.len());
        frames
    }

    fn tool_use(&self, text_before: &str, calls: &[(String, String)]) -> Vec<(Bytes, Duration)> {
        let mut frames = self.start();
        let mut index = 0;
        if !text_before.is_empty() {
            Self::text_block(0, &words(text_before), Duration::ZERO, &mut frames);
            index = 1;
        }
        for (i, (name, input)) in calls.iter().enumerate() {
            let block = json!({"type": "tool_use", "id": format!("toolu_fake{}_{i}", self.n), "name": name, "input": {}});
            frames.push((
                event(
                    "content_block_start",
                    &json!({"type": "content_block_start", "index": index, "content_block": block}),
                ),
                Duration::ZERO,
            ));
            // Anthropic opens with an empty partial_json, then the input in pieces.
            let mut parts = vec![String::new()];
            parts.extend(pieces(input, 3));
            for part in parts {
                let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": part}});
                frames.push((event("content_block_delta", &delta), Duration::ZERO));
            }
            frames.push((
                event(
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": index}),
                ),
                Duration::ZERO,
            ));
            index += 1;
        }
        Self::finish(&mut frames, "tool_use", calls.len() * 10);
        frames
    }

    fn error_event(
        &self,
        text_before: &str,
        error_type: &str,
        message: &str,
    ) -> Vec<(Bytes, Duration)> {
        let mut frames = self.start();
        let index = 0;
        frames.push((event("content_block_start", &json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}})), Duration::ZERO));
        for chunk in words(text_before) {
            let delta = json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": chunk}});
            frames.push((event("content_block_delta", &delta), Duration::ZERO));
        }
        let error = json!({"type": "error", "error": {"type": error_type, "message": message}});
        frames.push((event("error", &error), Duration::ZERO));
        frames
    }
}

fn words(text: &str) -> Vec<String> {
    text.split_inclusive(char::is_whitespace)
        .map(str::to_owned)
        .collect()
}

fn error_response(
    status: u16,
    error_type: &str,
    message: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = json!({"type": "error", "error": {"type": error_type, "message": message}, "request_id": "req_fake"});
    json_error(status_or_500(status), body, retry_after)
}

/// Text of a content value: a string, or its text blocks joined.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn last_user_text(request: &Value) -> String {
    messages_of(request)
        .filter(|m| role(m) == Some("user"))
        .map(|m| content_text(m.get("content")))
        .rfind(|t| !t.is_empty())
        .unwrap_or_default()
}

fn prompt_tokens(request: &Value) -> usize {
    let system = match request.get("system") {
        Some(Value::String(s)) => s.clone(),
        other => content_text(other),
    };
    let messages: usize = messages_of(request)
        .map(|m| content_text(m.get("content")).split_whitespace().count() + 4)
        .sum();
    system.split_whitespace().count() + messages
}
