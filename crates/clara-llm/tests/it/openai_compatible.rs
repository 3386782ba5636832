//! The OpenAI-compatible provider against a fake OpenAI server over real HTTP.

use std::time::{Duration, Instant};

use crate::common::{
    WAIT, WORD_DELAY, assert_ends_in_provider_error, closed_port, drop_mid_answer, fast_retry,
    hello, stopped_with_usage, test_timeouts, text_of, wait_until,
};
use clara_llm::{
    ChatProvider, LlmError, OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy, Secret,
    StreamEvent, TimeoutPhase,
};
use clara_testkit::{FakeOpenAi, FakeReply};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn config(base_url: String, key: Option<&str>) -> OpenAiCompatibleConfig {
    let mut config = OpenAiCompatibleConfig::new(base_url, "gpt-test");
    config.api_key = key.map(Secret::from);
    config.retry = fast_retry();
    config.timeouts = test_timeouts();
    config
}

fn provider(fake: &FakeOpenAi, key: Option<&str>) -> OpenAiCompatible {
    OpenAiCompatible::new(config(fake.base_url(), key)).unwrap()
}

/// Collects a whole answer to [`hello`]: the deltas joined, and every event.
async fn collect(provider: &OpenAiCompatible) -> (String, Vec<Result<StreamEvent, LlmError>>) {
    let events = crate::common::collect(provider, hello()).await;
    (text_of(&events), events)
}

#[tokio::test]
async fn streamed_text_arrives_as_deltas_then_finished_with_usage() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::text("Hello from the fake model"));
    let (text, events) = collect(&provider(&fake, None)).await;

    assert_eq!(text, "Hello from the fake model");
    let deltas = events
        .iter()
        .filter(|e| matches!(e, Ok(StreamEvent::Delta(_))))
        .count();
    assert_eq!(deltas, 5, "one delta per word chunk: {events:?}");
    let usage = stopped_with_usage(&events);
    assert_eq!(usage.output_tokens, 5);
    assert!(usage.input_tokens > 0);
    assert_eq!(events.len(), deltas + 1, "nothing after Finished");
    wait_until("the fake saw the stream complete", || {
        fake.completed_streams() >= 1
    })
    .await;
    assert_eq!(fake.dropped_streams(), 0);
}

#[tokio::test]
async fn request_body_and_auth_header() {
    let fake = FakeOpenAi::start().await;
    let with_key = provider(&fake, Some("sk-test-123"));
    assert_eq!(with_key.name(), "openai-compatible");
    assert_eq!(with_key.model(), "gpt-test");

    let mut request = hello();
    request.max_tokens = Some(64);
    request.temperature = Some(0.25);
    with_key.complete(request).await.unwrap();
    let mut other_model = hello();
    other_model.model = Some("other-model".into());
    provider(&fake, None).complete(other_model).await.unwrap();

    let requests = fake.wait_for_requests(2, WAIT).await;
    let body = &requests[0].body;
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["max_tokens"], 64);
    assert_eq!(body["temperature"], 0.25);
    assert_eq!(
        body["messages"],
        serde_json::json!([
            {"role": "system", "content": "You are Clara."},
            {"role": "user", "content": "hello there"},
        ])
    );
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-test-123")
    );
    assert_eq!(requests[0].header("content-type"), Some("application/json"));

    assert_eq!(requests[1].body["model"], "other-model");
    assert!(requests[1].body.get("max_tokens").is_none());
    assert!(requests[1].body.get("temperature").is_none());
    assert_eq!(
        requests[1].header("authorization"),
        None,
        "no key, no Authorization header"
    );
}

#[tokio::test]
async fn complete_collects_the_whole_answer() {
    let fake = FakeOpenAi::start().await;
    let answer = provider(&fake, None).complete(hello()).await.unwrap();
    assert_eq!(answer, "You said: hello there");

    fake.push(FakeReply::text(""));
    let err = provider(&fake, None).complete(hello()).await.unwrap_err();
    assert!(matches!(err, LlmError::Empty), "{err:?}");
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(FakeReply::error(401, "Incorrect API key provided."));
    let err = provider(&fake, Some("sk-wrong"))
        .stream_chat(hello())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LlmError::Unauthorized { .. }), "{err:?}");
    assert!(!err.is_retryable());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn rate_limit_waits_for_retry_after_then_succeeds() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::Error {
        status: 429,
        message: "Rate limit reached".into(),
        retry_after: Some(1),
    });
    let started = Instant::now();
    let answer = provider(&fake, None).complete(hello()).await.unwrap();
    let elapsed = started.elapsed();

    assert_eq!(answer, "You said: hello there");
    assert_eq!(fake.request_count(), 2);
    assert!(
        elapsed >= Duration::from_secs(1),
        "retried after {elapsed:?}, before Retry-After"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_cap_gives_up() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::Error {
        status: 429,
        message: "Slow down".into(),
        retry_after: Some(3600),
    });
    let err = provider(&fake, None)
        .stream_chat(hello())
        .await
        .err()
        .unwrap();
    match &err {
        LlmError::RateLimited { retry_after } => {
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)))
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.user_message().contains("60 minutes"),
        "{}",
        err.user_message()
    );
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::error(
        500,
        "The server had an error while processing your request.",
    ));
    fake.push(FakeReply::error(
        500,
        "The server had an error while processing your request.",
    ));
    fake.push(FakeReply::text("third time lucky"));
    let answer = provider(&fake, None).complete(hello()).await.unwrap();
    assert_eq!(answer, "third time lucky");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn overload_gives_up_after_max_attempts() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(FakeReply::error(
        503,
        "The engine is currently overloaded, please try again later",
    ));
    let err = provider(&fake, None)
        .stream_chat(hello())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LlmError::Overloaded), "{err:?}");
    assert_eq!(fake.request_count(), 3);

    let mut once = config(fake.base_url(), None);
    once.retry = RetryPolicy::no_retries();
    let err = OpenAiCompatible::new(once)
        .unwrap()
        .stream_chat(hello())
        .await
        .err()
        .unwrap();
    assert!(matches!(err, LlmError::Overloaded));
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn client_errors_carry_the_servers_message() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::error(
        404,
        "The model `gpt-test` does not exist or you do not have access to it.",
    ));
    fake.push(FakeReply::error(400, "Invalid value for 'temperature'."));
    let p = provider(&fake, None);
    match p.stream_chat(hello()).await.err().unwrap() {
        LlmError::NotFound { model, detail } => {
            assert_eq!(model, "gpt-test");
            assert!(detail.contains("does not exist"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    match p.stream_chat(hello()).await.err().unwrap() {
        LlmError::BadRequest {
            status: 400,
            detail,
        } => assert!(detail.contains("temperature"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.request_count(), 2, "client errors are not retried");
}

fn sse(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("{l}\n\n")).collect()
}

#[tokio::test]
async fn truncated_stream_yields_deltas_then_stream_cut() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::RawSse(sse(&[
        r#"data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
        r#"data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Half an "},"finish_reason":null}]}"#,
        r#"data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"answer"},"finish_reason":null}]}"#,
    ])));
    let (text, events) = collect(&provider(&fake, None)).await;
    assert_eq!(text, "Half an answer");
    assert_eq!(events.len(), 3);
    assert!(
        matches!(events.last().unwrap(), Err(LlmError::StreamCut)),
        "{events:?}"
    );
}

#[tokio::test]
async fn garbage_data_line_is_malformed() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::RawSse(sse(&[
        r#"data: {"choices":[{"delta":{"content":"ok "}}]}"#,
        "data: <html>Bad gateway</html>",
        r#"data: {"choices":[{"delta":{"content":"never seen"}}]}"#,
        "data: [DONE]",
    ])));
    let (text, events) = collect(&provider(&fake, None)).await;
    assert_eq!(text, "ok ");
    assert!(
        matches!(events.last().unwrap(), Err(LlmError::Malformed { .. })),
        "{events:?}"
    );
}

#[tokio::test]
async fn error_object_mid_stream_is_provider_error() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::RawSse(sse(&[
        ": OPENROUTER PROCESSING",
        r#"data: {"choices":[{"delta":{"content":"Start"},"finish_reason":null}]}"#,
        r#"data: {"error":{"message":"Upstream provider overloaded","code":502},"choices":[{"delta":{"content":""},"finish_reason":"error"}]}"#,
    ])));
    let (text, events) = collect(&provider(&fake, None)).await;
    assert_eq!(text, "Start");
    assert_ends_in_provider_error(&events, "Upstream provider overloaded");
}

#[tokio::test]
async fn lenient_compatible_stream_completes() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::RawSse(sse(&[
        ": OPENROUTER PROCESSING",
        r#"data: {"id":"x","choices":[{"delta":{"role":"assistant"},"finish_reason":""}]}"#,
        r#"data: {"id":"x","choices":[{"delta":{"content":null,"reasoning_content":"thinking"}}]}"#,
        r#"data: {"id":"x","provider":"p","choices":[{"delta":{"content":"Hi"},"finish_reason":"stop","native_finish_reason":"STOP"}]}"#,
        r#"data: {"id":"x","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"cost":0.1}}"#,
        "data: [DONE]",
    ])));
    let (text, events) = collect(&provider(&fake, None)).await;
    assert_eq!(text, "Hi");
    let usage = stopped_with_usage(&events);
    assert_eq!((usage.input_tokens, usage.output_tokens), (7, 1));
}

#[tokio::test]
async fn hang_times_out_waiting_for_headers() {
    let fake = FakeOpenAi::start().await;
    fake.set_default(FakeReply::Hang);
    let mut config = config(fake.base_url(), None);
    config.timeouts.first_byte = Duration::from_millis(300);
    let err = OpenAiCompatible::new(config)
        .unwrap()
        .stream_chat(hello())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            LlmError::Timeout {
                phase: TimeoutPhase::FirstByte,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(fake.request_count(), 1, "a timeout is not retried");
}

#[tokio::test]
async fn silence_between_chunks_times_out() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::Stream {
        chunks: vec!["slow".into()],
        delay: Duration::from_secs(3),
    });
    let mut config = config(fake.base_url(), None);
    config.timeouts.idle = Duration::from_millis(300);
    let p = OpenAiCompatible::new(config).unwrap();
    let events: Vec<_> = p.stream_chat(hello()).await.unwrap().collect().await;
    assert!(
        matches!(
            events.last().unwrap(),
            Err(LlmError::Timeout {
                phase: TimeoutPhase::Idle,
                ..
            })
        ),
        "{events:?}"
    );
}

#[tokio::test]
async fn unreachable_port_is_unreachable() {
    let port = closed_port();
    let p = OpenAiCompatible::new(config(format!("http://127.0.0.1:{port}/v1"), None)).unwrap();
    let err = p.stream_chat(hello()).await.err().unwrap();
    match &err {
        LlmError::Unreachable { endpoint, .. } => {
            assert!(endpoint.contains(&port.to_string()), "{endpoint}")
        }
        other => panic!("{other:?}"),
    }
    assert!(err.is_retryable());
}

#[tokio::test]
async fn dropping_the_stream_drops_the_connection() {
    let fake = FakeOpenAi::start().await;
    let chunks = (0..100).map(|i| format!("word{i} ")).collect();
    fake.push(FakeReply::Stream {
        chunks,
        delay: WORD_DELAY,
    });
    let stream = provider(&fake, None).stream_chat(hello()).await.unwrap();
    let counts = || (fake.dropped_streams(), fake.completed_streams());
    drop_mid_answer(stream, counts).await;
    assert_eq!(fake.dropped_streams(), 1);
}

/// A one-request HTTP server answering with exactly `response`.
async fn one_shot(response: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 4096];
        // Headers, then the Content-Length body; close enough for one small JSON request.
        while !String::from_utf8_lossy(&request).contains("\"stream\"") {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buf[..n]);
        }
        socket.write_all(response.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
    });
    url
}

#[tokio::test]
async fn json_answer_to_a_stream_request_is_accepted() {
    let body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"Whole answer."},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":3,"total_tokens":12}}"#;
    let response: &'static str = Box::leak(
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_boxed_str(),
    );
    let url = one_shot(response).await;
    let p = OpenAiCompatible::new(config(url, None)).unwrap();
    let events: Vec<_> = p.stream_chat(hello()).await.unwrap().collect().await;
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(
        events[0].as_ref().unwrap(),
        &StreamEvent::Delta("Whole answer.".into())
    );
    assert!(
        matches!(events[1], Ok(StreamEvent::Finished { usage: Some(u), .. }) if u.input_tokens == 9)
    );
}
