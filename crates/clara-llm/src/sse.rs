//! Reading OpenAI-compatible answers: the SSE stream of `chat.completion.chunk`s, and
//! the plain JSON `chat.completion` some servers send when they ignore `stream: true`.
//!
//! Compatible servers differ from OpenAI in many small ways, so decoding walks
//! `serde_json::Value`s and treats every field as optional instead of using strict
//! types: missing `choices`, `finish_reason: ""`, `content: null`, role-only deltas,
//! extra fields and keep-alive comments are all normal.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{EventStreamError, Eventsource};
use futures::{Stream, StreamExt};
use serde_json::Value;

use crate::error::{MAX_DETAIL_CHARS, clean_detail, truncate};
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
    Ok(Chunk::Part {
        text,
        finish_reason,
        usage: usage(&value),
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

type Events<E> =
    Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, EventStreamError<E>>> + Send>>;

struct StreamState<E> {
    events: Events<E>,
    /// Set once the byte stream has ended; events decoded after that come from a
    /// final line the server never terminated.
    source_ended: Arc<AtomicBool>,
    idle: Duration,
    secret: Option<Secret>,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    deltas: usize,
    done: bool,
}

impl<E> StreamState<E> {
    fn finished(&mut self) -> Result<StreamEvent, LlmError> {
        self.done = true;
        tracing::debug!(deltas = self.deltas, reason = ?self.finish_reason, usage = ?self.usage, "answer stream finished");
        Ok(StreamEvent::Finished {
            reason: self.finish_reason.take(),
            usage: self.usage.take(),
        })
    }

    fn fail(&mut self, error: LlmError) -> Result<StreamEvent, LlmError> {
        self.done = true;
        tracing::warn!(deltas = self.deltas, error = %error, "answer stream failed");
        Err(error)
    }

    /// The stream stopped without `[DONE]`: complete if the model had said it was finished.
    fn ended(&mut self) -> Result<StreamEvent, LlmError> {
        if self.finish_reason.is_some() {
            self.finished()
        } else {
            self.fail(LlmError::StreamCut)
        }
    }

    fn scrub(&self, text: &str) -> String {
        clean_detail(text, self.secret.as_ref().map(Secret::expose))
    }
}

/// Turns an SSE byte stream into a [`ChatStream`]. Each gap between chunks longer than
/// `idle` ends the stream with [`LlmError::Timeout`]; dropping the returned stream drops
/// `bytes` (and with it the connection).
pub(crate) fn chat_stream<S, E>(bytes: S, idle: Duration, secret: Option<Secret>) -> ChatStream
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
    let events: Events<E> = Box::pin(bytes.chain(terminator).eventsource());
    let state = StreamState {
        events,
        source_ended,
        idle,
        secret,
        finish_reason: None,
        usage: None,
        deltas: 0,
        done: false,
    };
    futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        loop {
            let next = match tokio::time::timeout(st.idle, st.events.next()).await {
                Ok(next) => next,
                // A server that said it was finished but keeps the connection open is done.
                Err(_) if st.finish_reason.is_some() => return Some((st.finished(), st)),
                Err(_) => {
                    let error = LlmError::Timeout {
                        phase: TimeoutPhase::Idle,
                        after: st.idle,
                    };
                    return Some((st.fail(error), st));
                }
            };
            let event = match next {
                None => return Some((st.ended(), st)),
                Some(Err(EventStreamError::Transport(e))) => {
                    tracing::debug!(error = %e, "answer stream broke off");
                    return Some((st.ended(), st));
                }
                Some(Err(e)) => {
                    let error = LlmError::Malformed {
                        detail: truncate(&e.to_string(), 120),
                    };
                    return Some((st.fail(error), st));
                }
                Some(Ok(event)) => event,
            };
            if event.event == "error" {
                let detail = match serde_json::from_str::<Value>(&event.data) {
                    Ok(value) => error_detail(value.get("error").unwrap_or(&value)),
                    Err(_) => event.data.clone(),
                };
                let error = LlmError::ProviderError {
                    detail: st.scrub(&detail),
                };
                return Some((st.fail(error), st));
            }
            if event.data.trim().is_empty() {
                continue;
            }
            match parse_chunk(&event.data) {
                Ok(Chunk::Done) => return Some((st.finished(), st)),
                Ok(Chunk::Part {
                    text,
                    finish_reason,
                    usage,
                }) => {
                    if finish_reason.is_some() {
                        st.finish_reason = finish_reason;
                    }
                    if usage.is_some() {
                        st.usage = usage;
                    }
                    if !text.is_empty() {
                        st.deltas += 1;
                        return Some((Ok(StreamEvent::Delta(text)), st));
                    }
                }
                Ok(Chunk::Error(detail)) => {
                    let error = LlmError::ProviderError {
                        detail: st.scrub(&detail),
                    };
                    return Some((st.fail(error), st));
                }
                // Half a JSON object at the very end is a cut connection, not a bad server.
                Err(_) if st.source_ended.load(Ordering::Acquire) => return Some((st.ended(), st)),
                Err(LlmError::Malformed { detail }) => {
                    let error = LlmError::Malformed {
                        detail: st.scrub(&detail),
                    };
                    return Some((st.fail(error), st));
                }
                Err(error) => return Some((st.fail(error), st)),
            }
        }
    })
    .boxed()
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
}
