//! Reading OpenAI-compatible answers: the SSE stream of `chat.completion.chunk`s, and
//! the plain JSON `chat.completion` some servers send when they ignore `stream: true`.
//!
//! Compatible servers differ from OpenAI in many small ways, so decoding walks
//! `serde_json::Value`s and treats every field as optional instead of using strict
//! types: missing `choices`, `finish_reason: ""`, `content: null`, role-only deltas,
//! extra fields and keep-alive comments are all normal.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::error::{MAX_DETAIL_CHARS, clean_detail, truncate};
use crate::tool_calls::ToolCallAssembler;
use crate::{ChatStream, LlmError, Secret, StreamEvent, TimeoutPhase, Usage};

/// What one `data:` payload said.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Chunk {
    /// `[DONE]`: the stream is over.
    Done,
    /// A `chat.completion.chunk`; any part may be empty.
    Part {
        /// Answer text in this chunk (may be empty).
        text: String,
        /// A non-empty `finish_reason`.
        finish_reason: Option<String>,
        /// Token counts, usually only on the last chunk.
        usage: Option<Usage>,
        /// Raw `delta.tool_calls` fragments, assembled by the stream.
        tool_calls: Vec<Value>,
    },
    /// An error object inside the stream.
    Error(String),
}

/// Decodes one `data:` payload.
pub(crate) fn parse_chunk(data: &str) -> Result<Chunk, LlmError> {
    let data = data.trim();
    if data == "[DONE]" {
        return Ok(Chunk::Done);
    }
    let value: Value = serde_json::from_str(data).map_err(|e| LlmError::Malformed {
        detail: format!("{e} in data line {:?}", truncate(data, 80)),
    })?;
    let Some(object) = value.as_object() else {
        return Err(LlmError::Malformed {
            detail: format!("data line is not an object: {}", truncate(data, 80)),
        });
    };
    if let Some(error) = object.get("error").filter(|e| !e.is_null()) {
        return Ok(Chunk::Error(error_detail(error)));
    }
    let choice = first_choice(&value);
    let text = choice.map(|c| choice_text(c, "delta")).unwrap_or_default();
    let finish_reason = choice.and_then(finish_reason);
    if finish_reason.as_deref() == Some("error") {
        return Ok(Chunk::Error(
            "the server ended the answer with finish_reason \"error\"".to_owned(),
        ));
    }
    let tool_calls = choice
        .and_then(|c| c.get("delta"))
        .and_then(|d| d.get("tool_calls"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    Ok(Chunk::Part {
        text,
        finish_reason,
        usage: usage(&value),
        tool_calls,
    })
}

/// Decodes a non-streamed `chat.completion` body into the events a stream would have had.
pub(crate) fn parse_completion(
    body: &[u8],
    secret: Option<&Secret>,
) -> Result<Vec<StreamEvent>, LlmError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        let shown = truncate(&String::from_utf8_lossy(body), 80);
        let detail = format!("{e} in JSON body {shown:?}");
        LlmError::Malformed {
            detail: clean_detail(&detail, secret.map(Secret::expose)),
        }
    })?;
    if let Some(error) = value.get("error").filter(|e| !e.is_null()) {
        return Err(LlmError::ProviderError {
            detail: clean_detail(&error_detail(error), secret.map(Secret::expose)),
        });
    }
    let Some(choice) = first_choice(&value) else {
        return Err(LlmError::Malformed {
            detail: "JSON completion without choices".to_owned(),
        });
    };
    let text = choice_text(choice, "message");
    let mut events = Vec::with_capacity(2);
    if !text.is_empty() {
        events.push(StreamEvent::Delta(text));
    }
    let mut tools = ToolCallAssembler::new();
    let calls = choice
        .get("message")
        .and_then(|m| m.get("tool_calls"))
        .and_then(Value::as_array);
    for (position, call) in calls.into_iter().flatten().enumerate() {
        tools.push(call, position);
    }
    events.extend(tools.take().into_iter().map(StreamEvent::ToolCall));
    events.push(StreamEvent::Finished {
        reason: finish_reason(choice),
        usage: usage(&value),
    });
    Ok(events)
}

/// The human-readable part of an OpenAI-style error value (`{"message": ..}` or a string).
pub(crate) fn error_detail(error: &Value) -> String {
    let text = match error {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.get("message").and_then(Value::as_str) {
            Some(m) => match o.get("code").filter(|c| !c.is_null()) {
                Some(Value::String(code)) => format!("{m} ({code})"),
                Some(code) => format!("{m} ({code})"),
                None => m.to_owned(),
            },
            None => error.to_string(),
        },
        other => other.to_string(),
    };
    truncate(&text, MAX_DETAIL_CHARS)
}

fn first_choice(value: &Value) -> Option<&Value> {
    let choices = value.get("choices")?.as_array()?;
    // n is always 1 for Clara, but some servers number choices, so prefer index 0.
    choices
        .iter()
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(0))
        .or_else(|| choices.first())
}

fn choice_text(choice: &Value, field: &str) -> String {
    let content = choice
        .get(field)
        .and_then(|d| d.get("content"))
        .or_else(|| choice.get("text"));
    match content {
        Some(Value::String(s)) => s.clone(),
        // Content-part arrays ([{"type":"text","text":".."}]) from a few servers.
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect(),
        _ => String::new(),
    }
}

fn finish_reason(choice: &Value) -> Option<String> {
    choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
}

fn usage(value: &Value) -> Option<Usage> {
    let usage = value.get("usage").filter(|u| u.is_object())?;
    let count = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| usage.get(*n).and_then(Value::as_u64))
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    };
    let input = count(&["prompt_tokens", "input_tokens"]);
    let output = count(&["completion_tokens", "output_tokens"]);
    if input.is_none() && output.is_none() {
        return None;
    }
    Some(Usage {
        input_tokens: input.unwrap_or(0),
        output_tokens: output.unwrap_or(0),
        // OpenRouter reports what the call cost (its credits are US dollars).
        cost_usd: usage.get("cost").and_then(Value::as_f64),
    })
}

/// One framed message of a streamed answer: an SSE event (`event` is its type, empty
/// when unnamed) or one NDJSON line (`event` empty).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Frame {
    /// The SSE `event:` name.
    pub event: String,
    /// The SSE `data:` payload or the line.
    pub data: String,
}

/// Frames as they are cut from the bytes; `Err` is a framing error (not transport).
pub(crate) type Frames = Pin<Box<dyn Stream<Item = FrameResult> + Send>>;

/// A frame, the transport breaking off (`Broken`), or bytes that cannot be framed.
pub(crate) enum FrameResult {
    /// A complete frame.
    Frame(Frame),
    /// The connection broke; treated like the end of the stream.
    Broken(String),
    /// The bytes are not the expected framing.
    Invalid(String),
}

/// What a decoder says after a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    /// Keep reading.
    Continue,
    /// The answer is complete (the decoder pushed `Finished`).
    Done,
}

/// A provider's stream format: turns frames into [`StreamEvent`]s.
pub(crate) trait Decoder: Send + 'static {
    /// Handles one frame, pushing any events it completes.
    fn frame(&mut self, frame: &Frame, out: &mut VecDeque<StreamEvent>) -> Result<Step, LlmError>;
    /// The bytes ended (or broke) before [`Step::Done`]: push `Finished` if the answer
    /// is complete anyway, or say why not (usually [`LlmError::StreamCut`]).
    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), LlmError>;
    /// Whether a long silence may be taken as the end (the model already said it stopped).
    fn may_end_on_idle(&self) -> bool {
        false
    }
}

/// Cuts an SSE byte stream into frames. The flag is set once the bytes have ended, so
/// a frame decoded after that came from a final line the server never terminated.
pub(crate) fn sse_frames<S, E>(bytes: S) -> (Frames, Arc<AtomicBool>)
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let source_ended = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&source_ended);
    // A final `data: [DONE]` without its blank line is common; a terminator lets the
    // parser dispatch it instead of silently dropping it.
    let terminator = futures::stream::once(async move {
        flag.store(true, Ordering::Release);
        Ok(Bytes::from_static(b"\n\n"))
    });
    let frames = bytes
        .chain(terminator)
        .eventsource()
        .map(|item| match item {
            Ok(event) => FrameResult::Frame(Frame {
                event: event.event,
                data: event.data,
            }),
            Err(EventStreamError::Transport(e)) => FrameResult::Broken(e.to_string()),
            Err(e) => FrameResult::Invalid(truncate(&e.to_string(), 120)),
        });
    (Box::pin(frames), source_ended)
}

/// Cuts a newline-delimited JSON byte stream into frames, one per non-blank line. A
/// last line without its newline is still a frame (flag set, as for [`sse_frames`]).
pub(crate) fn ndjson_frames<S, E>(bytes: S) -> (Frames, Arc<AtomicBool>)
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let source_ended = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&source_ended);
    struct Lines<S> {
        bytes: Pin<Box<S>>,
        buffer: Vec<u8>,
        ended: bool,
        flag: Arc<AtomicBool>,
    }
    let state = Lines {
        bytes: Box::pin(bytes),
        buffer: Vec::new(),
        ended: false,
        flag,
    };
    let frames = futures::stream::unfold(state, |mut st| async move {
        loop {
            if let Some(at) = st.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = st.buffer.drain(..=at).collect();
                let text = String::from_utf8_lossy(&line).trim().to_owned();
                if text.is_empty() {
                    continue;
                }
                return Some((
                    FrameResult::Frame(Frame {
                        event: String::new(),
                        data: text,
                    }),
                    st,
                ));
            }
            if st.ended {
                let rest = String::from_utf8_lossy(&std::mem::take(&mut st.buffer))
                    .trim()
                    .to_owned();
                if rest.is_empty() {
                    return None;
                }
                return Some((
                    FrameResult::Frame(Frame {
                        event: String::new(),
                        data: rest,
                    }),
                    st,
                ));
            }
            match st.bytes.next().await {
                Some(Ok(chunk)) => st.buffer.extend_from_slice(&chunk),
                Some(Err(e)) => {
                    st.ended = true;
                    st.buffer.clear();
                    st.flag.store(true, Ordering::Release);
                    return Some((FrameResult::Broken(e.to_string()), st));
                }
                None => {
                    st.ended = true;
                    st.flag.store(true, Ordering::Release);
                }
            }
        }
    });
    (Box::pin(frames), source_ended)
}

struct Driver<D> {
    frames: Frames,
    source_ended: Arc<AtomicBool>,
    idle: Duration,
    secret: Option<Secret>,
    decoder: D,
    out: VecDeque<StreamEvent>,
    /// The error to yield once `out` is drained.
    failure: Option<LlmError>,
    /// No more frames are read (finished or failed).
    over: bool,
    deltas: usize,
}

impl<D: Decoder> Driver<D> {
    fn fail(&mut self, error: LlmError) {
        let error = scrub_error(error, self.secret.as_ref());
        tracing::warn!(deltas = self.deltas, error = %error, "answer stream failed");
        self.failure = Some(error);
        self.over = true;
    }

    fn end(&mut self) {
        match self.decoder.end(&mut self.out) {
            Ok(()) => self.over = true,
            Err(error) => self.fail(error),
        }
    }

    /// Reads frames until there is something to yield or nothing more will come.
    async fn advance(&mut self) {
        while self.out.is_empty() && !self.over {
            let next = match tokio::time::timeout(self.idle, self.frames.next()).await {
                Ok(next) => next,
                // A server that said it was finished but keeps the connection open is done.
                Err(_) if self.decoder.may_end_on_idle() => {
                    self.end();
                    continue;
                }
                Err(_) => {
                    self.fail(LlmError::Timeout {
                        phase: TimeoutPhase::Idle,
                        after: self.idle,
                    });
                    continue;
                }
            };
            let frame = match next {
                None => {
                    self.end();
                    continue;
                }
                Some(FrameResult::Broken(detail)) => {
                    tracing::debug!(error = %detail, "answer stream broke off");
                    self.end();
                    continue;
                }
                Some(FrameResult::Invalid(detail)) => {
                    self.fail(LlmError::Malformed { detail });
                    continue;
                }
                Some(FrameResult::Frame(frame)) => frame,
            };
            match self.decoder.frame(&frame, &mut self.out) {
                Ok(Step::Continue) => {}
                Ok(Step::Done) => self.over = true,
                // Half a JSON object at the very end is a cut connection, not a bad server.
                Err(LlmError::Malformed { .. }) if self.source_ended.load(Ordering::Acquire) => {
                    self.end()
                }
                Err(error) => self.fail(error),
            }
        }
    }
}

/// Runs `decoder` over `frames` as a [`ChatStream`]. Each gap between frames longer
/// than `idle` ends the stream with [`LlmError::Timeout`] (unless the decoder may end
/// there); errors carry no copy of `secret`; dropping the stream drops the bytes (and
/// with them the connection).
pub(crate) fn decode_stream<D: Decoder>(
    (frames, source_ended): (Frames, Arc<AtomicBool>),
    idle: Duration,
    secret: Option<Secret>,
    decoder: D,
) -> ChatStream {
    let driver = Driver {
        frames,
        source_ended,
        idle,
        secret,
        decoder,
        out: VecDeque::new(),
        failure: None,
        over: false,
        deltas: 0,
    };
    futures::stream::unfold(driver, |mut d| async move {
        d.advance().await;
        if let Some(event) = d.out.pop_front() {
            match &event {
                StreamEvent::Delta(_) => d.deltas += 1,
                StreamEvent::Finished { reason, usage } => {
                    tracing::debug!(deltas = d.deltas, reason = ?reason, usage = ?usage, "answer stream finished");
                }
                StreamEvent::ToolCall(call) => {
                    tracing::debug!(tool = %call.name, id = %call.id, "model called a tool");
                }
            }
            return Some((Ok(event), d));
        }
        d.failure.take().map(|error| (Err(error), d))
    })
    .boxed()
}

/// Removes the key from the server-provided parts of an error.
pub(crate) fn scrub_error(error: LlmError, secret: Option<&Secret>) -> LlmError {
    let clean = |detail: String| clean_detail(&detail, secret.map(Secret::expose));
    match error {
        LlmError::Malformed { detail } => LlmError::Malformed {
            detail: clean(detail),
        },
        LlmError::ProviderError { detail } => LlmError::ProviderError {
            detail: clean(detail),
        },
        other => other,
    }
}

/// The OpenAI chat-completion-chunk format.
#[derive(Debug, Default)]
pub(crate) struct OpenAiDecoder {
    finish_reason: Option<String>,
    usage: Option<Usage>,
    tools: ToolCallAssembler,
}

impl OpenAiDecoder {
    fn finish(&mut self, out: &mut VecDeque<StreamEvent>) {
        self.flush_tools(out);
        out.push_back(StreamEvent::Finished {
            reason: self.finish_reason.take(),
            usage: self.usage.take(),
        });
    }

    fn flush_tools(&mut self, out: &mut VecDeque<StreamEvent>) {
        out.extend(self.tools.take().into_iter().map(StreamEvent::ToolCall));
    }
}

impl Decoder for OpenAiDecoder {
    fn frame(&mut self, frame: &Frame, out: &mut VecDeque<StreamEvent>) -> Result<Step, LlmError> {
        if frame.event == "error" {
            let detail = match serde_json::from_str::<Value>(&frame.data) {
                Ok(value) => error_detail(value.get("error").unwrap_or(&value)),
                Err(_) => frame.data.clone(),
            };
            return Err(LlmError::ProviderError { detail });
        }
        if frame.data.trim().is_empty() {
            return Ok(Step::Continue);
        }
        match parse_chunk(&frame.data)? {
            Chunk::Done => {
                self.finish(out);
                Ok(Step::Done)
            }
            Chunk::Error(detail) => Err(LlmError::ProviderError { detail }),
            Chunk::Part {
                text,
                finish_reason,
                usage,
                tool_calls,
            } => {
                if !text.is_empty() {
                    out.push_back(StreamEvent::Delta(text));
                }
                for (position, fragment) in tool_calls.iter().enumerate() {
                    self.tools.push(fragment, position);
                }
                if usage.is_some() {
                    self.usage = usage;
                }
                if finish_reason.is_some() {
                    self.finish_reason = finish_reason;
                    // The calls are complete once the model says it stopped; emitting them
                    // now lets the tool loop start while the usage chunk is still coming.
                    self.flush_tools(out);
                }
                Ok(Step::Continue)
            }
        }
    }

    /// The stream stopped without `[DONE]`: complete if the model had said it was finished.
    fn end(&mut self, out: &mut VecDeque<StreamEvent>) -> Result<(), LlmError> {
        if self.finish_reason.is_some() {
            self.finish(out);
            Ok(())
        } else {
            Err(LlmError::StreamCut)
        }
    }

    fn may_end_on_idle(&self) -> bool {
        self.finish_reason.is_some()
    }
}

/// Turns an OpenAI SSE byte stream into a [`ChatStream`] (see [`decode_stream`]).
pub(crate) fn chat_stream<S, E>(bytes: S, idle: Duration, secret: Option<Secret>) -> ChatStream
where
    S: Stream<Item = Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    decode_stream(sse_frames(bytes), idle, secret, OpenAiDecoder::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(text: &str, finish: Option<&str>, usage: Option<(u32, u32)>) -> Chunk {
        Chunk::Part {
            text: text.to_owned(),
            finish_reason: finish.map(str::to_owned),
            usage: usage.map(|(i, o)| Usage {
                cost_usd: None,
                input_tokens: i,
                output_tokens: o,
            }),
            tool_calls: Vec::new(),
        }
    }

    #[test]
    fn openai_chunks() {
        let c = r#"{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"logprobs":null,"finish_reason":null}]}"#;
        assert_eq!(parse_chunk(c).unwrap(), part("Hel", None, None));
        let role = r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#;
        assert_eq!(parse_chunk(role).unwrap(), part("", None, None));
        let stop = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#;
        assert_eq!(parse_chunk(stop).unwrap(), part("", Some("stop"), None));
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        assert_eq!(parse_chunk(usage).unwrap(), part("", None, Some((12, 3))));
        assert_eq!(parse_chunk(" [DONE] ").unwrap(), Chunk::Done);
    }

    #[test]
    fn lenient_with_compatible_servers() {
        // No choices at all, an empty finish_reason, null content, reasoning, extras.
        assert_eq!(parse_chunk(r#"{"id":"x"}"#).unwrap(), part("", None, None));
        let empty_reason = r#"{"choices":[{"delta":{"content":"a"},"finish_reason":""}]}"#;
        assert_eq!(parse_chunk(empty_reason).unwrap(), part("a", None, None));
        let null_content = r#"{"choices":[{"delta":{"content":null,"reasoning_content":"hmm"}}]}"#;
        assert_eq!(parse_chunk(null_content).unwrap(), part("", None, None));
        let extra = r#"{"choices":[{"delta":{"content":"b"},"native_finish_reason":"x"}],"provider":"y","usage":null}"#;
        assert_eq!(parse_chunk(extra).unwrap(), part("b", None, None));
        let parts = r#"{"choices":[{"delta":{"content":[{"type":"text","text":"c"},{"type":"text","text":"d"}]}}]}"#;
        assert_eq!(parse_chunk(parts).unwrap(), part("cd", None, None));
        let second_index_first = r#"{"choices":[{"index":1,"delta":{"content":"no"}},{"index":0,"delta":{"content":"yes"}}]}"#;
        assert_eq!(
            parse_chunk(second_index_first).unwrap(),
            part("yes", None, None)
        );
    }

    #[test]
    fn errors_in_the_stream() {
        let e = r#"{"error":{"message":"Upstream overloaded","type":"server_error","code":502}}"#;
        assert_eq!(
            parse_chunk(e).unwrap(),
            Chunk::Error("Upstream overloaded (502)".to_owned())
        );
        assert!(
            matches!(parse_chunk(r#"{"error":"boom"}"#).unwrap(), Chunk::Error(d) if d == "boom")
        );
        let finish_error = r#"{"choices":[{"delta":{},"finish_reason":"error"}]}"#;
        assert!(matches!(
            parse_chunk(finish_error).unwrap(),
            Chunk::Error(_)
        ));
        assert!(matches!(
            parse_chunk("hello there"),
            Err(LlmError::Malformed { .. })
        ));
        assert!(matches!(
            parse_chunk("[1,2]"),
            Err(LlmError::Malformed { .. })
        ));
    }

    #[test]
    fn json_completion() {
        let body = br#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Hi!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":2}}"#;
        assert_eq!(
            parse_completion(body, None).unwrap(),
            vec![
                StreamEvent::Delta("Hi!".into()),
                StreamEvent::Finished {
                    reason: Some("stop".into()),
                    usage: Some(Usage {
                        cost_usd: None,
                        input_tokens: 5,
                        output_tokens: 2
                    })
                }
            ]
        );
        let err = br#"{"error":{"message":"bad key sk-1","type":"x"}}"#;
        let secret = Secret::from("sk-1");
        match parse_completion(err, Some(&secret)) {
            Err(LlmError::ProviderError { detail }) => {
                assert!(!detail.contains("sk-1"), "{detail}")
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_completion(b"<html>", None),
            Err(LlmError::Malformed { .. })
        ));
    }

    async fn run(body: &'static str) -> Vec<Result<StreamEvent, LlmError>> {
        let pieces: Vec<Result<Bytes, std::io::Error>> = body
            .as_bytes()
            .chunks(7)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        chat_stream(futures::stream::iter(pieces), Duration::from_secs(5), None)
            .collect()
            .await
    }

    #[tokio::test]
    async fn stream_with_comments_split_anywhere() {
        let body = ": OPENROUTER PROCESSING\n\n\
            data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}\n\n\
            : keep-alive\n\n\
            data: {\"choices\":[{\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n\
            data: [DONE]\n\n";
        let events = run(body).await;
        let events: Vec<_> = events.into_iter().map(Result::unwrap).collect();
        assert_eq!(
            events,
            vec![
                StreamEvent::Delta("Hé".into()),
                StreamEvent::Delta("llo".into()),
                StreamEvent::Finished {
                    reason: Some("stop".into()),
                    usage: Some(Usage {
                        cost_usd: None,
                        input_tokens: 3,
                        output_tokens: 2
                    })
                },
            ]
        );
    }

    #[tokio::test]
    async fn done_without_trailing_blank_line_and_crlf() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\r\n\r\ndata: [DONE]";
        let events = run(body).await;
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[1],
            Ok(StreamEvent::Finished {
                reason: None,
                usage: None
            })
        ));
    }

    #[tokio::test]
    async fn finish_reason_without_done_is_complete() {
        let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"},\"finish_reason\":\"length\"}]}\n\n";
        let events = run(body).await;
        assert!(
            matches!(&events[1], Ok(StreamEvent::Finished { reason: Some(r), .. }) if r == "length")
        );
    }

    #[tokio::test]
    async fn cut_mid_json_is_stream_cut() {
        let body =
            "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"del";
        let events = run(body).await;
        assert_eq!(events.len(), 2);
        assert!(matches!(events[1], Err(LlmError::StreamCut)));
    }

    #[tokio::test]
    async fn nothing_after_an_error() {
        let body = "data: not json\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n";
        let events = run(body).await;
        assert_eq!(events.len(), 1);
        assert!(matches!(events[0], Err(LlmError::Malformed { .. })));
    }

    #[tokio::test]
    async fn error_event_type() {
        let body = "event: error\ndata: {\"message\":\"overloaded\"}\n\n";
        let events = run(body).await;
        assert!(
            matches!(&events[0], Err(LlmError::ProviderError { detail }) if detail == "overloaded")
        );
    }

    #[tokio::test]
    async fn idle_gap_times_out() {
        let first = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(
            b"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n",
        ))]);
        let bytes = first.chain(futures::stream::pending());
        let events: Vec<_> = chat_stream(bytes, Duration::from_millis(200), None)
            .collect()
            .await;
        assert_eq!(events.len(), 2);
        assert!(matches!(
            events[1],
            Err(LlmError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            })
        ));
    }

    #[tokio::test]
    async fn fragmented_tool_calls_are_assembled_before_finished() {
        let body = "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let me look.\"}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"\"}}]}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"q\\\":\"}}]}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"time\",\"arguments\":\"{}\"}}]}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"rust\\\"}\"}}]}}]}\n\n\
            data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n\
            data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2}}\n\n\
            data: [DONE]\n\n";
        let events: Vec<_> = run(body).await.into_iter().map(Result::unwrap).collect();
        let call = |id: &str, name: &str, args: &str| {
            StreamEvent::ToolCall(clara_core::ToolCall {
                id: id.into(),
                name: name.into(),
                arguments: args.into(),
            })
        };
        assert_eq!(
            events,
            vec![
                StreamEvent::Delta("Let me look.".into()),
                call("call_a", "search", "{\"q\":\"rust\"}"),
                call("call_b", "time", "{}"),
                StreamEvent::Finished {
                    reason: Some("tool_calls".into()),
                    usage: Some(Usage {
                        cost_usd: None,
                        input_tokens: 3,
                        output_tokens: 2
                    })
                },
            ]
        );
    }

    #[tokio::test]
    async fn tool_calls_without_finish_reason_come_out_at_done() {
        let body = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]}}]}\n\ndata: [DONE]\n\n";
        let events: Vec<_> = run(body).await.into_iter().map(Result::unwrap).collect();
        assert!(
            matches!(&events[0], StreamEvent::ToolCall(c) if c.name == "f" && c.arguments == "{\"a\":1}" && c.id == "call_1"),
            "{events:?}"
        );
        assert!(matches!(events[1], StreamEvent::Finished { .. }));
        // Cut before the model finished: partial calls are not emitted.
        let cut = "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"x\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\"}}]}}]}\n\n";
        let events = run(cut).await;
        assert_eq!(events.len(), 1);
        assert!(matches!(events[0], Err(LlmError::StreamCut)));
    }

    #[test]
    fn json_completion_with_tool_calls() {
        let body = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},"finish_reason":"tool_calls"}]}"#;
        let events = parse_completion(body, None).unwrap();
        assert!(
            matches!(&events[0], StreamEvent::ToolCall(c) if c.id == "call_1" && c.name == "f")
        );
        assert!(
            matches!(&events[1], StreamEvent::Finished { reason: Some(r), .. } if r == "tool_calls")
        );
    }
}
