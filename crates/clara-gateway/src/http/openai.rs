//! `/v1/models` and `/v1/chat/completions`, as OpenAI's API has them, so any
//! OpenAI client library talks to Clara — with her memory.
//!
//! Clara keeps each person's conversation herself: a request's last message (a
//! user message) is what she is told; the earlier messages and a system prompt
//! are the client's copy of a history Clara already has, and are not replayed.
//! The `user` field (or the `X-Clara-User` header) names the person; without it
//! the request speaks as the web page's person. A person's requests take turns.
//!
//! The model picks the tier: `clara` (Clara's choice), `clara-low`, `clara-mid`,
//! `clara-high`.

use crate::http::access::{ApiAccess, ApiPath, parse_json, read_json_body};
use crate::http::errors::ApiError;
use crate::http::hub::Hub;
use crate::http::state::AppState;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use clara_core::{
    Author, ConversationRef, EventId, Image, Inbound, MessageId, Outbound, ThoughtId, Tier,
};
use clara_runtime::{Accepted, Engine};
use clara_store::Store;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedMutexGuard, mpsc};

/// The models Clara serves, and the tier each asks for (`None`: Clara's choice).
const MODELS: [(&str, Option<Tier>); 4] = [
    ("clara", None),
    ("clara-low", Some(Tier::Low)),
    ("clara-mid", Some(Tier::Mid)),
    ("clara-high", Some(Tier::High)),
];

/// The longest a reply may go without an event before the request gives up.
const REPLY_SILENCE: Duration = Duration::from_secs(600);
/// The longest the usage of a finished reply is waited for.
const USAGE_WAIT: Duration = Duration::from_secs(5);

/// The tier a model name asks for, if Clara serves that model.
fn tier_of(model: &str) -> Option<Option<Tier>> {
    MODELS
        .iter()
        .find(|(name, _)| *name == model)
        .map(|(_, tier)| *tier)
}

fn model_object(id: &str, created: i64) -> Value {
    json!({ "id": id, "object": "model", "created": created, "owned_by": "clara" })
}

/// `GET /v1/models`.
pub(crate) async fn models(State(state): State<AppState>, _access: ApiAccess) -> Json<Value> {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|(id, _)| model_object(id, state.started_at_s))
        .collect();
    Json(json!({ "object": "list", "data": data }))
}

/// `GET /v1/models/{model}`.
pub(crate) async fn model(
    State(state): State<AppState>,
    _access: ApiAccess,
    ApiPath(model): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    tier_of(&model)
        .map(|_| Json(model_object(&model, state.started_at_s)))
        .ok_or_else(|| ApiError::unknown_model(&model))
}

/// A chat completion request, as Clara reads it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CompletionRequest {
    pub(crate) model: String,
    pub(crate) tier: Option<Tier>,
    pub(crate) text: String,
    pub(crate) images: Vec<Image>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) user: Option<String>,
}

/// Reads a request body (already JSON) the way OpenAI validates it: each
/// problem is a 400 naming its field, an unknown model a 404.
pub(crate) fn parse_request(body: &Value) -> Result<CompletionRequest, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid("The request body must be a JSON object."));
    };
    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.trim().is_empty() => m.trim().to_owned(),
        Some(_) => {
            return Err(ApiError::invalid("`model` must be a string.").with_param("model"));
        }
        None => {
            return Err(
                ApiError::invalid("You must provide a model parameter.").with_param("model")
            );
        }
    };
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) => {
            return Err(
                ApiError::invalid("`messages` must hold at least one message.")
                    .with_param("messages"),
            );
        }
        _ => {
            return Err(
                ApiError::invalid("`messages` must be an array of messages.")
                    .with_param("messages"),
            );
        }
    };
    for (i, m) in messages.iter().enumerate() {
        if !m.get("role").is_some_and(Value::is_string) {
            return Err(ApiError::invalid(format!(
                "messages[{i}] must be an object with a string `role`."
            ))
            .with_param(format!("messages[{i}].role")));
        }
    }
    let last = messages.len() - 1;
    let last_message = &messages[last];
    if last_message.get("role").and_then(Value::as_str) != Some("user") {
        return Err(ApiError::invalid(
            "The last message must be the user's: Clara answers it, and keeps the conversation before it herself.",
        )
        .with_param(format!("messages[{last}].role")));
    }
    let (text, images) = read_content(last_message.get("content"), last)?;
    let stream = flag(obj, "stream")?;
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => flag(o, "include_usage")?,
        Some(_) => {
            return Err(ApiError::invalid("`stream_options` must be an object.")
                .with_param("stream_options"));
        }
    };
    match obj.get("n") {
        None | Some(Value::Null) => {}
        Some(n) if n.as_u64() == Some(1) => {}
        Some(_) => {
            return Err(ApiError::invalid("Clara gives one answer: `n` must be 1.").with_param("n"));
        }
    }
    if obj
        .get("tools")
        .and_then(Value::as_array)
        .is_some_and(|t| !t.is_empty())
    {
        return Err(
            ApiError::invalid("Clara runs her own tools; requests cannot offer tools.")
                .with_param("tools"),
        );
    }
    let user = match obj.get("user") {
        None | Some(Value::Null) => None,
        Some(Value::String(u)) => Some(u.clone()),
        Some(_) => return Err(ApiError::invalid("`user` must be a string.").with_param("user")),
    };
    let Some(tier) = tier_of(&model) else {
        return Err(ApiError::unknown_model(&model));
    };
    Ok(CompletionRequest {
        model,
        tier,
        text,
        images,
        stream,
        include_usage,
        user,
    })
}

fn flag(obj: &serde_json::Map<String, Value>, name: &str) -> Result<bool, ApiError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => {
            Err(ApiError::invalid(format!("`{name}` must be true or false.")).with_param(name))
        }
    }
}

/// A message's content: a string, or parts (`text`, `image_url`).
fn read_content(content: Option<&Value>, index: usize) -> Result<(String, Vec<Image>), ApiError> {
    let param = format!("messages[{index}].content");
    match content {
        Some(Value::String(s)) => Ok((s.clone(), Vec::new())),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
                match kind {
                    "text" => match part.get("text").and_then(Value::as_str) {
                        Some(t) => texts.push(t.to_owned()),
                        None => {
                            return Err(ApiError::invalid("A text part needs a string `text`.")
                                .with_param(format!("{param}[{j}].text")));
                        }
                    },
                    "image_url" => {
                        let url = match part.get("image_url") {
                            Some(Value::String(u)) => Some(u.as_str()),
                            Some(Value::Object(o)) => o.get("url").and_then(Value::as_str),
                            _ => None,
                        };
                        let url = url.ok_or_else(|| {
                            ApiError::invalid("An image part needs `image_url.url`.")
                                .with_param(format!("{param}[{j}].image_url"))
                        })?;
                        images.push(
                            image_from_url(url)
                                .map_err(|e| e.with_param(format!("{param}[{j}].image_url")))?,
                        );
                    }
                    other => {
                        return Err(ApiError::invalid(format!(
                            "Clara reads text and image parts; {other:?} parts are not supported."
                        ))
                        .with_param(format!("{param}[{j}].type")));
                    }
                }
            }
            Ok((texts.join("\n"), images))
        }
        _ => Err(
            ApiError::invalid("The message needs `content`: a string or an array of parts.")
                .with_param(param),
        ),
    }
}

/// An image from an `image_url`: an `https:`/`http:` URL the model fetches, or a
/// base64 `data:` URL.
fn image_from_url(url: &str) -> Result<Image, ApiError> {
    if let Some(rest) = url.strip_prefix("data:") {
        let (meta, data) = rest
            .split_once(',')
            .ok_or_else(|| ApiError::invalid("The data URL has no comma before its data."))?;
        let media_type = meta
            .strip_suffix(";base64")
            .ok_or_else(|| ApiError::invalid("Image data URLs must be base64 encoded."))?;
        if !media_type.starts_with("image/") {
            return Err(ApiError::invalid(format!(
                "The data URL holds {media_type:?}, not an image."
            )));
        }
        let data = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|_| ApiError::invalid("The image's base64 data is not valid."))?;
        return Ok(Image::Bytes {
            media_type: media_type.to_owned(),
            data,
        });
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(Image::Url {
            url: url.to_owned(),
        });
    }
    Err(ApiError::invalid(
        "An image URL must be https://, http:// or a base64 data: URL.",
    ))
}

/// `POST /v1/chat/completions`.
pub(crate) async fn completions(
    State(state): State<AppState>,
    access: ApiAccess,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let response = match answer(state, access, &headers, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    };
    metrics::counter!("clara_api_completions_total", "status" => response.status().as_u16().to_string())
        .increment(1);
    response
}

async fn answer(
    state: AppState,
    access: ApiAccess,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_json_body(headers, body, state.config.max_body_bytes).await?;
    let request = parse_request(&parse_json::<Value>(&bytes)?)?;
    let person = access.person(&state, request.user.as_deref(), headers)?;
    let conversation = person.api();
    let author = person.author();
    let turn = state.api_turns.turn(&conversation.channel).await;
    // A request of this person that was abandoned (its client went away) may
    // still be answering; it is stopped, so this one's events are its own.
    state.engine.stop(&conversation, &author).await;
    state.engine.wait_idle(&conversation).await;

    let (tx, rx) = mpsc::channel(256);
    let listening = Listening::new(Arc::clone(&state.hub), &conversation.channel, tx);
    let inbound = Inbound {
        event_id: EventId(format!("api-{}", MessageId::new())),
        conversation: conversation.clone(),
        author: author.clone(),
        text: request.text.clone(),
        sent_at_ms: clara_runtime::clock::now_ms(),
        tier: request.tier,
        images: request.images.clone(),
        files: Vec::new(),
        replying_to: Vec::new(),
    };
    let accepted = state.engine.submit(inbound).await?;
    let meta = Meta {
        id: format!("chatcmpl-{}", MessageId::new().0.simple()),
        created: clara_runtime::clock::now_ms() / 1000,
        model: request.model.clone(),
        include_usage: request.include_usage,
    };
    if accepted != Accepted::Queued {
        // A stop phrase (nothing to answer) or a repeat: an empty answer.
        return Ok(if request.stream {
            sse(finished_stream(&meta, "", None))
        } else {
            Json(completion(&meta, "", None)).into_response()
        });
    }
    state.engine.flush(&conversation).await;
    let reply = Reply {
        engine: state.engine.clone(),
        store: state.store.clone(),
        conversation,
        author,
        rx,
        thought: None,
        finished: false,
        _listening: listening,
        turn: Some(turn),
    };
    if request.stream {
        Ok(sse(streamed(reply, meta)))
    } else {
        whole(reply, meta).await
    }
}

/// The request's identity in every answer object.
#[derive(Clone, Debug)]
struct Meta {
    id: String,
    created: i64,
    model: String,
    include_usage: bool,
}

/// One step of the reply, as the request sees it.
enum Step {
    Text(String),
    Done,
    Cancelled,
    Failed(String),
}

/// The API listener's registration; removed when the request ends.
struct Listening {
    hub: Arc<Hub>,
    channel: String,
    tx: mpsc::Sender<Outbound>,
}

impl Listening {
    fn new(hub: Arc<Hub>, channel: &str, tx: mpsc::Sender<Outbound>) -> Self {
        hub.listen(channel, tx.clone());
        Self {
            hub,
            channel: channel.to_owned(),
            tx,
        }
    }
}

impl Drop for Listening {
    fn drop(&mut self) {
        self.hub.unlisten(&self.channel, &self.tx);
    }
}

/// A reply being received. Dropped before it finished (the client went away),
/// it stops the reply, as closing a connection to OpenAI stops generation.
struct Reply {
    engine: Engine,
    store: Store,
    conversation: ConversationRef,
    author: Author,
    rx: mpsc::Receiver<Outbound>,
    thought: Option<ThoughtId>,
    finished: bool,
    _listening: Listening,
    /// The person's turn; an unfinished reply holds it until its stop is through.
    turn: Option<OwnedMutexGuard<()>>,
}

impl Reply {
    async fn next(&mut self) -> Step {
        loop {
            let outbound = match tokio::time::timeout(REPLY_SILENCE, self.rx.recv()).await {
                Ok(Some(o)) => o,
                Ok(None) => return self.finish(Step::Failed("The reply was lost.".into())),
                Err(_) => {
                    return self.finish(Step::Failed(
                        "Clara did not answer in time; please try again.".into(),
                    ));
                }
            };
            let Some(thought) = outbound.thought() else {
                continue;
            };
            // The first reply after this request's message is its answer.
            if *self.thought.get_or_insert(thought) != thought {
                continue;
            }
            match outbound {
                Outbound::Delta { text, .. } | Outbound::Send { text, .. } => {
                    return Step::Text(text);
                }
                Outbound::End { .. } => return self.finish(Step::Done),
                Outbound::Cancelled { .. } => return self.finish(Step::Cancelled),
                Outbound::Error { message, .. } => return self.finish(Step::Failed(message)),
                _ => {}
            }
        }
    }

    fn finish(&mut self, step: Step) -> Step {
        self.finished = true;
        step
    }

    /// What the reply cost, once Clara has stored it.
    async fn usage(&self) -> Option<Value> {
        let thought = self.thought?;
        let usage = tokio::time::timeout(USAGE_WAIT, async {
            self.engine.wait_idle(&self.conversation).await;
            let _ = self.store.writer().flush().await;
            self.store.thought_usage(thought).await.ok().flatten()
        })
        .await
        .ok()
        .flatten()?;
        let (input, output) = (
            u64::from(usage.input_tokens),
            u64::from(usage.output_tokens),
        );
        Some(json!({
            "prompt_tokens": input,
            "completion_tokens": output,
            "total_tokens": input + output,
        }))
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        // The turn goes with the stop, so the person's next request starts only
        // after this reply is stopped and cannot be cut short by this stop.
        let turn = self.turn.take();
        let engine = self.engine.clone();
        let conversation = self.conversation.clone();
        let author = self.author.clone();
        // Without a runtime (it is shutting down) there is nothing left to stop.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                engine.stop(&conversation, &author).await;
                drop(turn);
            });
        }
    }
}

fn completion(meta: &Meta, text: &str, usage: Option<Value>) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [{
            "index": 0,
            "message": { "role": "assistant", "content": text, "refusal": null },
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": usage,
    })
}

fn reply_failed(message: String) -> ApiError {
    let mut e = ApiError::invalid(message);
    e.status = StatusCode::BAD_GATEWAY;
    e.kind = "server_error";
    e.with_code("upstream_error")
}

fn reply_cancelled() -> ApiError {
    ApiError::conflict(
        "The reply was stopped before it finished.",
        "reply_cancelled",
    )
}

/// Waits for the whole answer.
async fn whole(mut reply: Reply, meta: Meta) -> Result<Response, ApiError> {
    let mut text = String::new();
    let error = loop {
        match reply.next().await {
            Step::Text(t) => text.push_str(&t),
            Step::Done => break None,
            Step::Cancelled => break Some(reply_cancelled()),
            Step::Failed(message) => break Some(reply_failed(message)),
        }
    };
    if let Some(error) = error {
        // The message was taken and stored: a retry would say it twice.
        let mut response = error.into_response();
        response
            .headers_mut()
            .insert("x-should-retry", HeaderValue::from_static("false"));
        return Ok(response);
    }
    let usage = reply.usage().await;
    Ok(Json(completion(&meta, &text, usage)).into_response())
}

fn chunk(meta: &Meta, delta: Value, finish: Option<&str>) -> Value {
    let mut chunk = json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [{ "index": 0, "delta": delta, "logprobs": null, "finish_reason": finish }],
    });
    if meta.include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk
}

fn usage_chunk(meta: &Meta, usage: Value) -> Value {
    json!({
        "id": meta.id,
        "object": "chat.completion.chunk",
        "created": meta.created,
        "model": meta.model,
        "system_fingerprint": null,
        "choices": [],
        "usage": usage,
    })
}

fn frame(value: &Value) -> String {
    format!("data: {value}\n\n")
}

const DONE: &str = "data: [DONE]\n\n";

/// The frames of an answer that is already complete.
fn finished_stream(
    meta: &Meta,
    text: &str,
    usage: Option<Value>,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send + use<> {
    let mut out = frame(&chunk(
        meta,
        json!({ "role": "assistant", "content": "" }),
        None,
    ));
    if !text.is_empty() {
        out.push_str(&frame(&chunk(meta, json!({ "content": text }), None)));
    }
    out.push_str(&frame(&chunk(meta, json!({}), Some("stop"))));
    if meta.include_usage {
        let usage = usage.unwrap_or_else(
            || json!({ "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 }),
        );
        out.push_str(&frame(&usage_chunk(meta, usage)));
    }
    out.push_str(DONE);
    futures::stream::once(async move { Ok(Bytes::from(out)) })
}

enum Phase {
    Start,
    Streaming,
    Over,
}

/// The answer as OpenAI streams it: a role chunk, content chunks, a finish
/// chunk, a usage chunk when asked for, `[DONE]`; a failure as an `error` frame.
fn streamed(
    reply: Reply,
    meta: Meta,
) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
    futures::stream::unfold(
        (reply, meta, Phase::Start),
        |(mut reply, meta, phase)| async move {
            let out = match phase {
                Phase::Over => return None,
                Phase::Start => {
                    let first = frame(&chunk(
                        &meta,
                        json!({ "role": "assistant", "content": "" }),
                        None,
                    ));
                    return Some((Ok(Bytes::from(first)), (reply, meta, Phase::Streaming)));
                }
                Phase::Streaming => match reply.next().await {
                    Step::Text(text) => {
                        let f = frame(&chunk(&meta, json!({ "content": text }), None));
                        return Some((Ok(Bytes::from(f)), (reply, meta, Phase::Streaming)));
                    }
                    Step::Done => {
                        let mut out = frame(&chunk(&meta, json!({}), Some("stop")));
                        if meta.include_usage {
                            let usage = reply.usage().await.unwrap_or_else(|| {
                            json!({ "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0 })
                        });
                            out.push_str(&frame(&usage_chunk(&meta, usage)));
                        }
                        out.push_str(DONE);
                        out
                    }
                    Step::Cancelled => format!("{}{DONE}", frame(&reply_cancelled().body())),
                    Step::Failed(message) => {
                        format!("{}{DONE}", frame(&reply_failed(message).body()))
                    }
                },
            };
            Some((Ok(Bytes::from(out)), (reply, meta, Phase::Over)))
        },
    )
}

fn sse<S>(stream: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req(body: Value) -> Result<CompletionRequest, ApiError> {
        parse_request(&body)
    }

    #[test]
    fn a_plain_request_is_read() {
        let r = req(json!({
            "model": "clara-high",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "hello"},
                {"role": "user", "content": "what did I say?"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "user": "ann",
            "temperature": 0.2
        }))
        .unwrap();
        assert_eq!(r.text, "what did I say?");
        assert_eq!(r.tier, Some(Tier::High));
        assert!(r.stream && r.include_usage);
        assert_eq!(r.user.as_deref(), Some("ann"));
    }

    #[test]
    fn models_map_to_tiers_and_unknown_ones_are_404() {
        assert_eq!(tier_of("clara"), Some(None));
        assert_eq!(tier_of("clara-low"), Some(Some(Tier::Low)));
        let e = req(json!({"model": "gpt-4o", "messages": [{"role":"user","content":"x"}]}))
            .unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        assert_eq!(e.code, Some("model_not_found"));
    }

    #[test]
    fn wrong_fields_are_named() {
        let cases = [
            (
                json!({"messages": [{"role":"user","content":"x"}]}),
                "model",
            ),
            (json!({"model": 3, "messages": []}), "model"),
            (json!({"model": "clara", "messages": []}), "messages"),
            (json!({"model": "clara", "messages": "hi"}), "messages"),
            (
                json!({"model": "clara", "messages": [{"content":"x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"assistant","content":"x"}]}),
                "messages[0].role",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"user"}]}),
                "messages[0].content",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"user","content":"x"}], "stream": "yes"}),
                "stream",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"user","content":"x"}], "n": 2}),
                "n",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"user","content":"x"}], "user": 7}),
                "user",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"user","content":"x"}], "tools": [{"type":"function"}]}),
                "tools",
            ),
            (
                json!({"model": "clara", "messages": [{"role":"user","content":[{"type":"input_audio"}]}]}),
                "messages[0].content[0].type",
            ),
        ];
        for (body, param) in cases {
            let e = req(body.clone()).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(e.param.as_deref(), Some(param), "{body}");
        }
        assert!(req(json!([1, 2])).is_err());
    }

    #[test]
    fn content_parts_give_text_and_images() {
        let r = req(
            json!({"model": "clara", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is"},
                {"type": "text", "text": "in these?"},
                {"type": "image_url", "image_url": {"url": "https://example.org/cat.png"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
            ]}]}),
        )
        .unwrap();
        assert_eq!(r.text, "what is\nin these?");
        assert_eq!(
            r.images[0],
            Image::Url {
                url: "https://example.org/cat.png".into()
            }
        );
        match &r.images[1] {
            Image::Bytes { media_type, data } => {
                assert_eq!(media_type, "image/png");
                assert_eq!(&data[..4], b"\x89PNG");
            }
            other => panic!("{other:?}"),
        }
        for bad in [
            "ftp://x/y.png",
            "data:text/plain;base64,aGk=",
            "data:image/png,raw",
            "data:image/png;base64,!!!",
        ] {
            assert!(image_from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn chunks_carry_usage_null_only_when_usage_was_asked_for() {
        let mut meta = Meta {
            id: "chatcmpl-1".into(),
            created: 1,
            model: "clara".into(),
            include_usage: false,
        };
        assert!(chunk(&meta, json!({}), None).get("usage").is_none());
        meta.include_usage = true;
        assert!(chunk(&meta, json!({}), None)["usage"].is_null());
        assert_eq!(
            chunk(&meta, json!({}), Some("stop"))["choices"][0]["finish_reason"],
            "stop"
        );
    }
}
