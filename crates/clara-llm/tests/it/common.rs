//! Setup shared by the provider tests; each test file uses only a part of it.

use std::time::Duration;

use clara_core::{ChatMessage, Image, ToolCall, ToolSpec};
use clara_llm::{
    ChatProvider, ChatRequest, ChatStream, LlmError, RetryPolicy, StreamEvent, Timeouts, Usage,
};
use futures::StreamExt;
use serde_json::json;

/// How long a test waits for the fake to see something.
pub const WAIT: Duration = Duration::from_secs(5);

/// Three attempts with millisecond backoff, so retry tests measure the server's
/// Retry-After, not our jitter.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(10),
    }
}

/// Timeouts short enough for tests, long enough for a loaded machine.
pub fn test_timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_byte: Duration::from_secs(5),
        idle: Duration::from_secs(5),
    }
}

/// A system prompt and one user message.
pub fn hello() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are Clara."),
        ChatMessage::user("hello there"),
    ])
}

/// Every event of a streamed answer.
pub async fn collect<P: ChatProvider>(
    p: &P,
    request: ChatRequest,
) -> Vec<Result<StreamEvent, LlmError>> {
    p.stream_chat(request).await.unwrap().collect().await
}

/// The deltas of `events`, joined.
pub fn text_of(events: &[Result<StreamEvent, LlmError>]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::Delta(d)) => Some(d.as_str()),
            _ => None,
        })
        .collect()
}

/// The tool calls among `events`, in order.
pub fn calls_of(events: &[Result<StreamEvent, LlmError>]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            Ok(StreamEvent::ToolCall(c)) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

/// A weather tool taking a city.
pub fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "weather__forecast".into(),
        description: "Forecast.".into(),
        parameters: json!({"type":"object","properties":{"city":{"type":"string"}}}),
    }
}

/// `request` followed by the assistant's `text` with `calls`, then one tool result per
/// call (`results[i]` answers `calls[i]`).
pub fn with_tool_results(
    request: ChatRequest,
    text: &str,
    calls: &[ToolCall],
    results: &[&str],
) -> ChatRequest {
    let mut follow_up = request;
    follow_up
        .messages
        .push(ChatMessage::tool_request(text, calls.to_vec()));
    for (call, result) in calls.iter().zip(results) {
        follow_up
            .messages
            .push(ChatMessage::tool_result(&call.id, *result));
    }
    follow_up
}

/// A PNG given as bytes (`\x89PNG`, `iVBORw==` in base64) and a JPEG given by URL.
pub fn png_and_url() -> Vec<Image> {
    vec![
        Image::Bytes {
            media_type: "image/png".into(),
            data: b"\x89PNG".to_vec(),
        },
        Image::Url {
            url: "https://example.invalid/cat.jpg".into(),
        },
    ]
}

/// The pause before each word of a long answer that a test drops mid-stream.
pub const WORD_DELAY: Duration = Duration::from_millis(30);

/// A hundred words (`w0 `, `w1 `, ...), long enough to drop mid-stream.
pub fn long_answer() -> Vec<String> {
    (0..100).map(|i| format!("w{i} ")).collect()
}

/// Reads two deltas of `stream` and drops it mid-answer; then waits until the fake
/// counted a dropped stream and checks it counted none as completed. `counts` gives
/// the fake's `(dropped_streams, completed_streams)`.
pub async fn drop_mid_answer(mut stream: ChatStream, counts: impl Fn() -> (usize, usize)) {
    for _ in 0..2 {
        assert!(matches!(
            stream.next().await,
            Some(Ok(StreamEvent::Delta(_)))
        ));
    }
    drop(stream);
    wait_until("the fake noticed the client went away", || counts().0 >= 1).await;
    assert_eq!(counts().1, 0);
}

/// The usage of the `Finished` event that ends `events`; panics unless it is there,
/// with usage and reason `stop`.
pub fn stopped_with_usage(events: &[Result<StreamEvent, LlmError>]) -> Usage {
    match events.last().unwrap() {
        Ok(StreamEvent::Finished {
            reason,
            usage: Some(usage),
        }) => {
            assert_eq!(reason.as_deref(), Some("stop"));
            *usage
        }
        other => panic!("expected Finished with usage, got {other:?}"),
    }
}

/// Checks that the last of `events` is a [`LlmError::ProviderError`] mentioning `needle`.
pub fn assert_ends_in_provider_error(events: &[Result<StreamEvent, LlmError>], needle: &str) {
    match events.last().unwrap() {
        Err(LlmError::ProviderError { detail }) => {
            assert!(detail.contains(needle), "{detail}")
        }
        other => panic!("{other:?}"),
    }
}

/// Polls `done` until it holds; panics with `what` after [`WAIT`].
pub async fn wait_until(what: &str, done: impl Fn() -> bool) {
    tokio::time::timeout(WAIT, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect(what);
}

/// A local port nothing listens on.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}
