//! A fake OpenAI server: chat completions (`POST /v1/chat/completions`), embeddings
//! (`POST /v1/embeddings`) and `GET /v1/models`.
//!
//! Streams look like OpenAI's: `data: {chat.completion.chunk}\n\n` frames (a role
//! chunk, content chunks, a finish chunk, a usage chunk when
//! `stream_options.include_usage` is set) and `data: [DONE]\n\n`. Non-streamed requests
//! get a `chat.completion` object; errors get OpenAI's
//! `{"error":{"message","type","param","code"}}` body with the matching status.
//!
//! Embeddings answer OpenAI's `{"object":"list","data":[{"object":"embedding",
//! "index","embedding"}],"model","usage"}` with deterministic vectors
//! ([`fake_embedding`]: a hashed bag of words, so texts sharing words are similar).
//! They have their own script ([`FakeOpenAi::push_embedding`]) and their own record
//! ([`FakeOpenAi::embedding_requests`]), so chat tests and embedding tests never see
//! each other's requests.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::recorder::{Recorder, fake_server, lock};

/// What the fake answers to one chat-completions request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeReply {
    /// `"You said: <last user message>"`, in about three chunks, without delay.
    Echo,
    /// This text in word-sized chunks, without delay.
    Text(String),
    /// `"You said: <last user message>"` in word-sized chunks, each after
    /// `delay`: a distinct, repeatable answer per question that takes a while.
    PacedEcho {
        /// The pause before each chunk.
        delay: Duration,
    },
    /// These chunks, each sent after `delay` (to interrupt an answer mid-stream).
    Stream {
        /// The content deltas.
        chunks: Vec<String>,
        /// The pause before each chunk.
        delay: Duration,
    },
    /// An OpenAI error body with this status, and a `Retry-After` header when set.
    Error {
        /// The HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Exactly this body as `text/event-stream` (for malformed or truncated streams).
    RawSse(String),
    /// Accept the request and never send response headers.
    Hang,
    /// Tool calls, as OpenAI streams them: any text first, then `delta.tool_calls`
    /// fragments keyed by `index`, then `finish_reason: "tool_calls"`. Ids are
    /// `call_fake<n>`.
    ToolCalls {
        /// Content streamed before the calls (may be empty).
        text_before: String,
        /// `(name, arguments JSON text)` of each call, in order.
        calls: Vec<(String, String)>,
        /// Split each call's arguments across several chunks, with `id`, `type` and
        /// `name` only on the first (as OpenAI does); otherwise one chunk per call.
        fragmented: bool,
    },
}

impl FakeReply {
    /// [`FakeReply::Text`] from anything string-like.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text(text.into())
    }

    /// [`FakeReply::Error`] without `Retry-After`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::Error {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// What the fake answers to one embeddings request.
#[derive(Debug, Clone, PartialEq)]
pub enum FakeEmbeddingReply {
    /// [`fake_embedding`] of each input, `data` in input order (the default).
    Vectors,
    /// The same vectors with `data` listed in reverse (each `index` still right), which
    /// the API allows: clients must order by `index`.
    Reversed,
    /// Vectors for every input but the last (a wrong count).
    MissingOne,
    /// An OpenAI error body with this status, and a `Retry-After` header when set.
    Error {
        /// The HTTP status.
        status: u16,
        /// `error.message`.
        message: String,
        /// `Retry-After` in seconds.
        retry_after: Option<u64>,
    },
    /// Exactly this body, status 200, as `application/json` (for malformed answers).
    Raw(String),
}

impl FakeEmbeddingReply {
    /// [`FakeEmbeddingReply::Error`] without `Retry-After`.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::Error {
            status,
            message: message.into(),
            retry_after: None,
        }
    }
}

/// The vector length of the fake's embeddings when a request asks for none.
pub const FAKE_EMBEDDING_DIM: usize = 64;

/// The fake's embedding of `text`: unit length, `dim` numbers (a zero vector when the
/// text has no word). Each lower-cased word adds ±1 at a position chosen by its FNV-1a
/// hash, so the cosine of two texts grows with the words they share.
pub fn fake_embedding(text: &str, dim: usize) -> Vec<f32> {
    let mut vector = vec![0.0f32; dim.max(1)];
    let len = vector.len() as u64;
    for word in words(text) {
        let hash = word.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        });
        // Both fit: the remainder is below `dim`, a usize.
        let slot = usize::try_from(hash % len).unwrap_or(0);
        vector[slot] += if hash >> 63 == 0 { 1.0 } else { -1.0 };
    }
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// The lower-cased words (runs of letters and digits) of `text`.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// The JSON body (`Value::Null` when it was not JSON).
    pub body: Value,
    /// Headers, names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `model` field.
    pub fn model(&self) -> Option<&str> {
        self.body.get("model").and_then(Value::as_str)
    }

    /// Whether the client asked for a stream.
    pub fn is_stream(&self) -> bool {
        self.body
            .get("stream")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The contents of the user messages, oldest first.
    pub fn user_texts(&self) -> Vec<String> {
        messages(&self.body)
            .filter(|m| role(m) == Some("user"))
            .map(message_text)
            .collect()
    }

    /// The content of the last user message.
    pub fn last_user_text(&self) -> Option<String> {
        last_user_text(&self.body)
    }

    /// The texts of an embeddings request's `input` (a string or an array of strings).
    pub fn inputs(&self) -> Vec<String> {
        match self.body.get("input") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        }
    }
}

struct Shared {
    default: Mutex<FakeReply>,
    next_id: AtomicU64,
    recorder: Recorder<FakeReply>,
    /// Embeddings requests and their script, apart from the chat ones.
    embeddings: Recorder<FakeEmbeddingReply>,
    embedding_dim: AtomicUsize,
}

fake_server!(
    /// A running fake OpenAI server on `127.0.0.1`; it stops when dropped.
    FakeOpenAi,
    "chat-completions"
);

impl FakeOpenAi {
    /// Starts a server on a free port. Panics if it cannot bind (this is test code).
    pub async fn start() -> FakeOpenAi {
        Self::start_on(0).await
    }

    /// Starts a server on 127.0.0.1:`port` (0 for a free one). Panics if it cannot bind.
    pub async fn start_on(port: u16) -> FakeOpenAi {
        let shared = Shared {
            default: Mutex::new(FakeReply::Echo),
            next_id: AtomicU64::new(1),
            recorder: Recorder::new("FakeOpenAi"),
            embeddings: Recorder::new("FakeOpenAi embeddings"),
            embedding_dim: AtomicUsize::new(FAKE_EMBEDDING_DIM),
        };
        let routes = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/embeddings", post(embeddings))
            .route("/v1/models", get(models));
        Self::launch(shared, port, routes).await
    }

    /// `http://127.0.0.1:PORT/v1`, the value for a provider's base URL.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}/v1", self.port)
    }

    /// Queues a reply; queued replies answer requests in arrival order.
    pub fn push(&self, reply: FakeReply) {
        self.shared.recorder.push(reply);
    }

    /// The reply used when the queue is empty (initially [`FakeReply::Echo`]).
    pub fn set_default(&self, reply: FakeReply) {
        *lock(&self.shared.default) = reply;
    }

    /// Queues an embeddings reply; queued replies answer embeddings requests in
    /// arrival order, then [`FakeEmbeddingReply::Vectors`].
    pub fn push_embedding(&self, reply: FakeEmbeddingReply) {
        self.shared.embeddings.push(reply);
    }

    /// The vector length when a request does not send `dimensions` (initially
    /// [`FAKE_EMBEDDING_DIM`]).
    pub fn set_embedding_dim(&self, dim: usize) {
        self.shared
            .embedding_dim
            .store(dim.max(1), Ordering::Relaxed);
    }

    /// Every embeddings request so far, in arrival order.
    pub fn embedding_requests(&self) -> Vec<RecordedRequest> {
        self.shared.embeddings.requests()
    }

    /// Waits until at least `n` embeddings requests arrived and returns them all.
    /// Panics after `timeout`.
    pub async fn wait_for_embedding_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Vec<RecordedRequest> {
        self.shared.embeddings.wait_for_requests(n, timeout).await
    }
}

async fn models() -> Response {
    axum::Json(json!({
        "object": "list",
        "data": [{ "id": "fake-model", "object": "model", "created": 0, "owned_by": "clara-testkit" }],
    }))
    .into_response()
}

async fn embeddings(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.embeddings.record(&headers, &body);
    let Some(request) = parsed else {
        return error_response(
            400,
            "We could not parse the JSON body of your request.",
            None,
        );
    };
    // OpenAI's own checks, before any scripted reply: `input` must be a non-empty
    // string or a non-empty array of non-empty strings.
    let inputs: Option<Vec<&str>> = match request.get("input") {
        Some(Value::String(s)) => Some(vec![s.as_str()]),
        Some(Value::Array(items)) => items.iter().map(Value::as_str).collect(),
        _ => None,
    };
    let Some(inputs) = inputs.filter(|i| !i.is_empty() && i.iter().all(|t| !t.is_empty())) else {
        return error_response(
            400,
            "'$.input' is invalid. Please check the API reference.",
            None,
        );
    };
    let Some(model) = request.get("model").and_then(Value::as_str) else {
        return error_response(400, "you must provide a model parameter", None);
    };
    let dim = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or_else(|| shared.embedding_dim.load(Ordering::Relaxed));

    let reply = shared
        .embeddings
        .next_reply()
        .unwrap_or(FakeEmbeddingReply::Vectors);
    let mut data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            json!({ "object": "embedding", "index": index, "embedding": fake_embedding(text, dim) })
        })
        .collect();
    match reply {
        FakeEmbeddingReply::Error {
            status,
            message,
            retry_after,
        } => return error_response(status, &message, retry_after),
        FakeEmbeddingReply::Raw(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            return response;
        }
        FakeEmbeddingReply::Vectors => {}
        FakeEmbeddingReply::Reversed => data.reverse(),
        FakeEmbeddingReply::MissingOne => {
            data.pop();
        }
    }
    // A rough count is all a fake owes: words, at least one per input.
    let tokens: usize = inputs.iter().map(|t| words(t).count().max(1)).sum();
    axum::Json(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": { "prompt_tokens": tokens, "total_tokens": tokens },
    }))
    .into_response()
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.recorder.record(&headers, &body);

    let Some(request) = parsed else {
        return error_response(
            400,
            "We could not parse the JSON body of your request.",
            None,
        );
    };
    let reply = shared
        .recorder
        .next_reply()
        .unwrap_or_else(|| lock(&shared.default).clone());
    let stream = request
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let ctx = Reply::new(&shared, &request);

    match reply {
        FakeReply::Error {
            status,
            message,
            retry_after,
        } => error_response(status, &message, retry_after),
        FakeReply::RawSse(body) => sse_response(Body::from(body)),
        FakeReply::Hang => {
            shared.recorder.shutting_down().await;
            error_response(503, "The fake server is shutting down.", None)
        }
        FakeReply::Echo => {
            let last = last_user_text(&request).unwrap_or_default();
            let chunks = ["You".to_owned(), " said: ".to_owned(), last];
            ctx.answer(
                stream,
                chunks.into_iter().filter(|c| !c.is_empty()).collect(),
                Duration::ZERO,
                shared,
            )
        }
        FakeReply::PacedEcho { delay } => {
            let last = last_user_text(&request).unwrap_or_default();
            let chunks = format!("You said: {last}")
                .split_inclusive(char::is_whitespace)
                .map(str::to_owned)
                .collect();
            ctx.answer(stream, chunks, delay, shared)
        }
        FakeReply::Text(text) => {
            let chunks = text
                .split_inclusive(char::is_whitespace)
                .map(str::to_owned)
                .collect();
            ctx.answer(stream, chunks, Duration::ZERO, shared)
        }
        FakeReply::Stream { chunks, delay } => ctx.answer(stream, chunks, delay, shared),
        FakeReply::ToolCalls {
            text_before,
            calls,
            fragmented,
        } => ctx.tool_calls(stream, &text_before, &calls, fragmented, shared),
    }
}

/// What every chunk of one answer shares.
struct Reply {
    id: String,
    created: u64,
    model: String,
    include_usage: bool,
    prompt_tokens: usize,
}

impl Reply {
    fn new(shared: &Shared, request: &Value) -> Self {
        let n = shared.next_id.fetch_add(1, Ordering::Relaxed);
        Self {
            id: format!("chatcmpl-fake{n:08}"),
            created: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            model: request
                .get("model")
                .and_then(Value::as_str)
                .unwrap_or("fake-model")
                .to_owned(),
            include_usage: request
                .pointer("/stream_options/include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            // A rough count is all a fake owes: words plus a little per message.
            prompt_tokens: messages(request)
                .map(|m| message_text(m).split_whitespace().count() + 4)
                .sum(),
        }
    }

    fn usage(&self, completion_tokens: usize) -> Value {
        json!({
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": self.prompt_tokens + completion_tokens,
        })
    }

    fn chunk(&self, delta: Value, finish_reason: Option<&str>) -> Bytes {
        let mut chunk = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason }],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        frame(&chunk)
    }

    fn answer(
        self,
        stream: bool,
        chunks: Vec<String>,
        delay: Duration,
        shared: Arc<Shared>,
    ) -> Response {
        let completion_tokens = chunks.len();
        if !stream {
            let text: String = chunks.concat();
            return axum::Json(json!({
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": text, "refusal": null },
                    "logprobs": null,
                    "finish_reason": "stop",
                }],
                "usage": self.usage(completion_tokens),
            }))
            .into_response();
        }

        // (frame, pause before it); only content frames wait.
        let mut frames: Vec<(Bytes, Duration)> = Vec::with_capacity(chunks.len() + 4);
        frames.push((
            self.chunk(
                json!({ "role": "assistant", "content": "", "refusal": null }),
                None,
            ),
            Duration::ZERO,
        ));
        for chunk in chunks {
            frames.push((self.chunk(json!({ "content": chunk }), None), delay));
        }
        frames.push((self.chunk(json!({}), Some("stop")), Duration::ZERO));
        if self.include_usage {
            let usage = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_fake",
                "choices": [],
                "usage": self.usage(completion_tokens),
            });
            frames.push((frame(&usage), Duration::ZERO));
        }
        frames.push((Bytes::from_static(b"data: [DONE]\n\n"), Duration::ZERO));

        stream_frames(frames, shared)
    }

    fn tool_calls(
        self,
        stream: bool,
        text_before: &str,
        calls: &[(String, String)],
        fragmented: bool,
        shared: Arc<Shared>,
    ) -> Response {
        let id = |i: usize| format!("call_fake{}{i}", &self.id[self.id.len() - 4..]);
        if !stream {
            let tool_calls: Vec<Value> = calls
                .iter()
                .enumerate()
                .map(|(i, (name, arguments))| json!({ "id": id(i), "type": "function", "function": { "name": name, "arguments": arguments } }))
                .collect();
            let content = if text_before.is_empty() {
                Value::Null
            } else {
                json!(text_before)
            };
            return axum::Json(json!({
                "id": self.id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": content, "tool_calls": tool_calls, "refusal": null },
                    "logprobs": null,
                    "finish_reason": "tool_calls",
                }],
                "usage": self.usage(calls.len() * 10),
            }))
            .into_response();
        }
        let mut frames: Vec<(Bytes, Duration)> = Vec::new();
        let first = if text_before.is_empty() {
            Value::Null
        } else {
            json!("")
        };
        frames.push((
            self.chunk(
                json!({ "role": "assistant", "content": first, "refusal": null }),
                None,
            ),
            Duration::ZERO,
        ));
        for word in text_before.split_inclusive(char::is_whitespace) {
            frames.push((self.chunk(json!({ "content": word }), None), Duration::ZERO));
        }
        for (i, (name, arguments)) in calls.iter().enumerate() {
            let head = |arguments: &str| json!({ "tool_calls": [{ "index": i, "id": id(i), "type": "function", "function": { "name": name, "arguments": arguments } }] });
            if !fragmented {
                frames.push((self.chunk(head(arguments), None), Duration::ZERO));
                continue;
            }
            frames.push((self.chunk(head(""), None), Duration::ZERO));
            for piece in pieces(arguments, 3) {
                let delta =
                    json!({ "tool_calls": [{ "index": i, "function": { "arguments": piece } }] });
                frames.push((self.chunk(delta, None), Duration::ZERO));
            }
        }
        frames.push((self.chunk(json!({}), Some("tool_calls")), Duration::ZERO));
        if self.include_usage {
            let usage = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": self.usage(calls.len() * 10),
            });
            frames.push((frame(&usage), Duration::ZERO));
        }
        frames.push((Bytes::from_static(b"data: [DONE]\n\n"), Duration::ZERO));
        stream_frames(frames, shared)
    }
}

/// `text` cut into about `n` pieces on character boundaries (never empty pieces).
pub(crate) fn pieces(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// Sends `(frame, pause before it)` as an SSE body, counting how the stream ended.
fn stream_frames(frames: Vec<(Bytes, Duration)>, shared: Arc<Shared>) -> Response {
    sse_response(shared.recorder.stream_body(frames))
}

fn frame(value: &Value) -> Bytes {
    Bytes::from(format!("data: {value}\n\n"))
}

pub(crate) fn sse_response(body: Body) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `code` as a status, 500 when it is not a valid one.
pub(crate) fn status_or_500(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// A JSON error `body` with `status`, and a `Retry-After` header when set.
pub(crate) fn json_error(status: StatusCode, body: Value, retry_after: Option<u64>) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn error_response(status: u16, message: &str, retry_after: Option<u64>) -> Response {
    let status = status_or_500(status);
    let (kind, code) = match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => (
            "invalid_request_error",
            Some("unsupported_country_region_territory"),
        ),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        500..=599 => ("server_error", None),
        _ => ("invalid_request_error", None),
    };
    let body =
        json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    json_error(status, body, retry_after)
}

/// The `messages` of a request body (none when it has no such array).
pub(crate) fn messages(body: &Value) -> impl DoubleEndedIterator<Item = &Value> {
    body.get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// A message's `role`.
pub(crate) fn role(message: &Value) -> Option<&str> {
    message.get("role").and_then(Value::as_str)
}

/// Content as a string, or the text parts of a content array joined.
fn message_text(message: &Value) -> String {
    match message.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn last_user_text(body: &Value) -> Option<String> {
    messages(body)
        .rfind(|m| role(m) == Some("user"))
        .map(message_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_request_helpers() {
        let r = RecordedRequest {
            body: json!({"model": "m", "stream": true, "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": "one"},
                {"role": "assistant", "content": "a"},
                {"role": "user", "content": [{"type": "text", "text": "two"}]},
            ]}),
            headers: vec![("authorization".into(), "Bearer k".into())],
        };
        assert_eq!(r.user_texts(), vec!["one", "two"]);
        assert_eq!(r.last_user_text().as_deref(), Some("two"));
        assert_eq!(r.header("Authorization"), Some("Bearer k"));
        assert_eq!(r.model(), Some("m"));
        assert!(r.is_stream());
    }

    #[test]
    fn fake_embeddings_are_deterministic_unit_vectors() {
        let cat = fake_embedding("The cat sat", 64);
        assert_eq!(cat, fake_embedding("the CAT sat!", 64));
        assert_eq!(cat.len(), 64);
        let norm: f32 = cat.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
        let near = fake_embedding("the cat sat down", 64);
        let far = fake_embedding("quarterly revenue report", 64);
        assert!(dot(&cat, &near) > dot(&cat, &far));
        assert!(fake_embedding("...", 8).iter().all(|x| *x == 0.0));

        let r = RecordedRequest {
            body: json!({"model": "m", "input": ["a", "b"]}),
            headers: Vec::new(),
        };
        assert_eq!(r.inputs(), vec!["a", "b"]);
    }
}
