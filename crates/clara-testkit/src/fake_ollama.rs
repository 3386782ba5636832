//! A fake Ollama server: `POST /api/chat` (streamed as `application/x-ndjson`) and
//! `GET /api/tags`.
//!
//! Each streamed line is a chat response object, `{"model","created_at","message":
//! {"role":"assistant","content"},"done":false}`; tool calls arrive whole in
//! `message.tool_calls` with `function.arguments` as a JSON object; the last line has
//! `"done":true`, `done_reason` and the token counts (`prompt_eval_count`,
//! `eval_count`) plus durations. Errors are `{"error":"..."}` bodies, or lines
//! mid-stream. Once a model list is set, other models get Ollama's 404.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::fake_openai::{json_error, messages, role, status_or_500};
use crate::recorder::{Recorder, fake_server, lock};

/// What the fake answers to one `/api/chat` request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeOllamaReply {
    /// `"You said: <last user message>"`.
    Echo,
    /// This text, one line per word.
    Text(String),
    /// These content pieces, each line sent after `delay`.
    Stream {
        /// The content pieces.
        chunks: Vec<String>,
        /// The pause before each.
        delay: Duration,
    },
    /// Text lines (if any), then one line carrying these whole tool calls
    /// (`(name, arguments JSON text)`; the arguments are sent as a JSON object).
    ToolCalls {
        /// Content before the calls.
        text_before: String,
        /// The calls.
        calls: Vec<(String, String)>,
    },
    /// An `{"error": message}` body with this status.
    Error {
        /// The HTTP status.
        status: u16,
        /// The error text.
        message: String,
    },
    /// Streams `text_before`, then an `{"error": message}` line, and ends.
    ErrorLine {
        /// Content before the error.
        text_before: String,
        /// The error text.
        message: String,
    },
    /// Exactly this body as `application/x-ndjson`.
    Raw(String),
}

struct Shared {
    models: Mutex<Vec<String>>,
    recorder: Recorder<FakeOllamaReply>,
}

fake_server!(
    /// A running fake Ollama server on `127.0.0.1`; it stops when dropped.
    FakeOllama,
    "`/api/chat`"
);

impl FakeOllama {
    /// Starts a server on a free port that serves any model. Panics if it cannot bind.
    pub async fn start() -> FakeOllama {
        let shared = Shared {
            models: Mutex::new(Vec::new()),
            recorder: Recorder::new("FakeOllama"),
        };
        let routes = Router::new()
            .route("/api/chat", post(chat))
            .route("/api/tags", get(tags));
        Self::launch(shared, 0, routes).await
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Only these models exist from now on (`name` or `name:tag`; a bare name means
    /// `:latest`); others get Ollama's 404. Listed by `/api/tags`.
    pub fn set_models(&self, models: Vec<String>) {
        *lock(&self.shared.models) = models.into_iter().map(|m| with_tag(&m)).collect();
    }

    /// Queues a reply; queued replies answer in arrival order, then [`FakeOllamaReply::Echo`].
    pub fn push(&self, reply: FakeOllamaReply) {
        self.shared.recorder.push(reply);
    }
}

fn with_tag(model: &str) -> String {
    if model.contains(':') {
        model.to_owned()
    } else {
        format!("{model}:latest")
    }
}

async fn tags(State(shared): State<Arc<Shared>>) -> Response {
    let models: Vec<Value> = lock(&shared.models)
        .iter()
        .map(|name| {
            json!({
                "name": name, "model": name, "modified_at": "2025-01-01T00:00:00Z", "size": 2019393189u64,
                "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                "details": { "parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"], "parameter_size": "3.2B", "quantization_level": "Q4_K_M" },
            })
        })
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}

async fn chat(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let parsed = shared.recorder.record(&headers, &body);
    let Some(request) = parsed else {
        return error_response(400, "invalid character looking for beginning of value");
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if model.is_empty() {
        return error_response(400, "model is required");
    }
    let known = lock(&shared.models).clone();
    if !known.is_empty() && !known.contains(&with_tag(&model)) {
        return error_response(
            404,
            &format!("model \"{model}\" not found, try pulling it first"),
        );
    }

    let reply = shared
        .recorder
        .next_reply()
        .unwrap_or(FakeOllamaReply::Echo);
    let line = |message: Value| json!({ "model": model, "created_at": "2025-01-01T00:00:00.000000Z", "message": message, "done": false });
    let text_lines = |text: &str, delay: Duration| -> Vec<(Bytes, Duration)> {
        text.split_inclusive(char::is_whitespace)
            .map(|w| {
                (
                    ndjson(&line(json!({"role": "assistant", "content": w}))),
                    delay,
                )
            })
            .collect()
    };
    let prompt_tokens: usize = messages(&request)
        .map(|m| {
            m.get("content")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .split_whitespace()
                .count()
                + 4
        })
        .sum();
    let done = |eval_count: usize| {
        ndjson(&json!({
            "model": model, "created_at": "2025-01-01T00:00:01.000000Z",
            "message": { "role": "assistant", "content": "" },
            "done_reason": "stop", "done": true,
            "total_duration": 4_883_583_458u64, "load_duration": 1_334_875, "prompt_eval_count": prompt_tokens,
            "prompt_eval_duration": 342_546_000, "eval_count": eval_count, "eval_duration": 4_535_599_000u64,
        }))
    };
    let frames = match reply {
        FakeOllamaReply::Error { status, message } => return error_response(status, &message),
        FakeOllamaReply::Raw(body) => return ndjson_response(Body::from(body)),
        FakeOllamaReply::Echo => {
            let mut frames = text_lines(
                &format!("You said: {}", last_user_text(&request)),
                Duration::ZERO,
            );
            frames.push((done(frames.len()), Duration::ZERO));
            frames
        }
        FakeOllamaReply::Text(text) => {
            let mut frames = text_lines(&text, Duration::ZERO);
            frames.push((done(frames.len()), Duration::ZERO));
            frames
        }
        FakeOllamaReply::Stream { chunks, delay } => {
            let mut frames: Vec<_> = chunks
                .iter()
                .map(|c| {
                    (
                        ndjson(&line(json!({"role": "assistant", "content": c}))),
                        delay,
                    )
                })
                .collect();
            frames.push((done(chunks.len()), Duration::ZERO));
            frames
        }
        FakeOllamaReply::ToolCalls { text_before, calls } => {
            let mut frames = text_lines(&text_before, Duration::ZERO);
            let calls: Vec<Value> = calls
                .iter()
                .map(|(name, arguments)| {
                    let arguments: Value =
                        serde_json::from_str(arguments).unwrap_or_else(|_| json!(arguments));
                    json!({ "function": { "name": name, "arguments": arguments } })
                })
                .collect();
            let n = calls.len();
            frames.push((
                ndjson(&line(
                    json!({"role": "assistant", "content": "", "tool_calls": calls}),
                )),
                Duration::ZERO,
            ));
            frames.push((done(n * 10), Duration::ZERO));
            frames
        }
        FakeOllamaReply::ErrorLine {
            text_before,
            message,
        } => {
            let mut frames = text_lines(&text_before, Duration::ZERO);
            frames.push((ndjson(&json!({ "error": message })), Duration::ZERO));
            frames
        }
    };
    ndjson_response(shared.recorder.stream_body(frames))
}

fn ndjson(value: &Value) -> Bytes {
    Bytes::from(format!("{value}\n"))
}

fn ndjson_response(body: Body) -> Response {
    let mut response = Response::new(body);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

fn error_response(status: u16, message: &str) -> Response {
    json_error(status_or_500(status), json!({ "error": message }), None)
}

fn last_user_text(request: &Value) -> String {
    messages(request)
        .filter(|m| role(m) == Some("user"))
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .next_back()
        .unwrap_or_default()
        .to_owned()
}
