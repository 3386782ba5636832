//! The Anthropic Messages provider against a fake Anthropic server over real HTTP.

use std::time::{Duration, Instant};

use crate::common::{
    WAIT, WORD_DELAY, calls_of, collect, drop_mid_answer, fast_retry, long_answer, png_and_url,
    stopped_with_usage, test_timeouts, text_of, wait_until, weather_tool, with_tool_results,
};
use clara_core::{ChatMessage, ToolCall};
use clara_llm::{Anthropic, AnthropicConfig, ChatProvider, ChatRequest, LlmError, StreamEvent};
use clara_testkit::{FakeAnthropic, FakeAnthropicReply};
use serde_json::json;

const KEY: &str = "sk-ant-api03-SECRET-7788";

fn config(fake: &FakeAnthropic) -> AnthropicConfig {
    let mut config = AnthropicConfig::new(KEY, "claude-test");
    config.base_url = fake.base_url();
    config.retry = fast_retry();
    config.timeouts = test_timeouts();
    config
}

fn provider(fake: &FakeAnthropic) -> Anthropic {
    Anthropic::new(config(fake)).unwrap()
}

fn hello() -> ChatRequest {
    ChatRequest::new(vec![
        ChatMessage::system("You are Clara."),
        ChatMessage::system("Memories: likes tea."),
        ChatMessage::user("hello there"),
    ])
}

#[tokio::test]
async fn streamed_text_usage_headers_and_body() {
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::text("Hello from Claude"));
    let p = provider(&fake);
    assert_eq!((p.name(), p.model()), ("anthropic", "claude-test"));
    let mut request = hello();
    request.temperature = Some(0.3);
    let events = collect(&p, request).await;

    assert_eq!(text_of(&events), "Hello from Claude");
    assert_eq!(events.len(), 4, "{events:?}");
    let usage = stopped_with_usage(&events);
    assert_eq!(usage.output_tokens, 3);
    assert!(usage.input_tokens > 4, "{usage:?}");

    let requests = fake.wait_for_requests(1, WAIT).await;
    let r = &requests[0];
    assert_eq!(r.header("x-api-key"), Some(KEY));
    assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("authorization"), None);
    assert_eq!(r.body["model"], "claude-test");
    assert_eq!(r.body["max_tokens"], 4096);
    assert_eq!(r.body["stream"], true);
    assert_eq!(r.body["temperature"], 0.3);
    assert_eq!(
        r.body["system"],
        json!([{"type":"text","text":"You are Clara.\n\nMemories: likes tea.","cache_control":{"type":"ephemeral"}}])
    );
    assert_eq!(
        r.body["messages"],
        json!([{"role":"user","content":[{"type":"text","text":"hello there"}]}])
    );
    wait_until("the fake saw the stream complete", || {
        fake.completed_streams() >= 1
    })
    .await;
}

#[tokio::test]
async fn complete_and_a_window_starting_with_clara() {
    let fake = FakeAnthropic::start().await;
    let p = provider(&fake);
    // The fake refuses a first message that is not `user`, like the real API.
    let request = ChatRequest::new(vec![
        ChatMessage::system("persona"),
        ChatMessage::assistant("Earlier answer."),
        ChatMessage::user("next"),
        ChatMessage::user("and more"),
    ]);
    let answer = p.complete(request).await.unwrap();
    assert_eq!(answer, "You said: next and more");
    let body = &fake.requests()[0].body;
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["messages"][1]["role"], "assistant");
    assert_eq!(body["messages"][2]["content"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn tool_round_trip() {
    let fake = FakeAnthropic::start().await;
    let p = provider(&fake);
    fake.push(FakeAnthropicReply::ToolUse {
        text_before: "Checking.".into(),
        calls: vec![
            (
                "weather__forecast".into(),
                r#"{"city": "Oslo", "days": 2}"#.into(),
            ),
            ("clock__now".into(), "{}".into()),
        ],
    });
    let mut request = hello();
    request.tools = vec![weather_tool()];
    let events = collect(&p, request.clone()).await;
    assert_eq!(text_of(&events), "Checking.");
    let calls: Vec<ToolCall> = calls_of(&events);
    assert_eq!(calls.len(), 2, "{events:?}");
    assert_eq!(calls[0].name, "weather__forecast");
    assert_eq!(calls[0].arguments, r#"{"city": "Oslo", "days": 2}"#);
    assert!(calls[0].id.starts_with("toolu_"));
    assert_eq!(calls[1].arguments, "{}");
    assert!(matches!(
        events.last().unwrap(),
        Ok(StreamEvent::Finished { reason: Some(r), .. }) if r == "tool_calls"
    ));

    let follow_up = with_tool_results(request, "Checking.", &calls, &["sunny", "12:00"]);
    fake.push(FakeAnthropicReply::text("Sunny at noon."));
    let events = collect(&p, follow_up).await;
    assert_eq!(text_of(&events), "Sunny at noon.", "{events:?}");

    let requests = fake.wait_for_requests(2, WAIT).await;
    assert_eq!(
        requests[0].body["tools"],
        json!([{"name":"weather__forecast","description":"Forecast.","input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])
    );
    let messages = &requests[1].body["messages"];
    assert_eq!(
        messages[1],
        json!({"role":"assistant","content":[
            {"type":"text","text":"Checking."},
            {"type":"tool_use","id":calls[0].id,"name":"weather__forecast","input":{"city":"Oslo","days":2}},
            {"type":"tool_use","id":calls[1].id,"name":"clock__now","input":{}},
        ]})
    );
    assert_eq!(
        messages[2],
        json!({"role":"user","content":[
            {"type":"tool_result","tool_use_id":calls[0].id,"content":"sunny"},
            {"type":"tool_result","tool_use_id":calls[1].id,"content":"12:00"},
        ]})
    );
}

#[tokio::test]
async fn images_as_base64_and_url_sources() {
    let fake = FakeAnthropic::start().await;
    let mut user = ChatMessage::user("Describe these.");
    user.images = png_and_url();
    provider(&fake)
        .complete(ChatRequest::new(vec![user]))
        .await
        .unwrap();
    let body = &fake.wait_for_requests(1, WAIT).await[0].body;
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw=="}},
            {"type":"image","source":{"type":"url","url":"https://example.invalid/cat.jpg"}},
            {"type":"text","text":"Describe these."},
        ])
    );
}

/// Whether an error is the expected one.
type Check = fn(&LlmError) -> bool;

async fn first_error(fake: &FakeAnthropic) -> LlmError {
    provider(fake).stream_chat(hello()).await.err().unwrap()
}

#[tokio::test]
async fn error_statuses_map_and_only_transient_ones_retry() {
    let cases: [(u16, Check); 5] = [
        (400, |e| {
            matches!(e, LlmError::BadRequest { status: 400, .. })
        }),
        (401, |e| matches!(e, LlmError::Unauthorized { .. })),
        (403, |e| matches!(e, LlmError::Forbidden)),
        (
            404,
            |e| matches!(e, LlmError::NotFound { model, .. } if model == "claude-test"),
        ),
        (413, |e| {
            matches!(e, LlmError::BadRequest { status: 413, .. })
        }),
    ];
    for (status, check) in cases {
        let fake = FakeAnthropic::start().await;
        fake.push(FakeAnthropicReply::error(status, "nope"));
        let err = first_error(&fake).await;
        assert!(check(&err), "{status}: {err:?}");
        assert_eq!(fake.request_count(), 1, "{status} is not retried");
    }
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::error(
        413,
        "Request exceeds the maximum size",
    ));
    assert!(first_error(&fake).await.user_message().contains("too long"));
    fake.push(FakeAnthropicReply::error(
        400,
        "prompt is too long: 210000 tokens > 200000 maximum",
    ));
    assert!(first_error(&fake).await.user_message().contains("too long"));

    // 500 and 529 are retried until the answer comes.
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::error(500, "Internal server error"));
    fake.push(FakeAnthropicReply::error(529, "Overloaded"));
    fake.push(FakeAnthropicReply::text("made it"));
    assert_eq!(provider(&fake).complete(hello()).await.unwrap(), "made it");
    assert_eq!(fake.request_count(), 3);

    // 529 every time: Overloaded after all attempts.
    let fake = FakeAnthropic::start().await;
    for _ in 0..3 {
        fake.push(FakeAnthropicReply::error(529, "Overloaded"));
    }
    let err = first_error(&fake).await;
    assert!(matches!(err, LlmError::Overloaded), "{err:?}");
    assert!(err.is_retryable());
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::Error {
        status: 429,
        error_type: "rate_limit_error".into(),
        message: "Number of request tokens has exceeded your per-minute rate limit".into(),
        retry_after: Some(1),
    });
    let started = Instant::now();
    let answer = provider(&fake).complete(hello()).await.unwrap();
    assert_eq!(answer, "You said: hello there");
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn overloaded_error_event_mid_stream() {
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::ErrorEvent {
        text_before: "I was saying".into(),
        error_type: "overloaded_error".into(),
        message: "Overloaded".into(),
    });
    let events = collect(&provider(&fake), hello()).await;
    assert_eq!(text_of(&events), "I was saying");
    assert!(
        matches!(events.last().unwrap(), Err(LlmError::Overloaded)),
        "{events:?}"
    );
    assert_eq!(
        fake.request_count(),
        1,
        "nothing is retried once the answer started"
    );

    fake.push(FakeAnthropicReply::ErrorEvent {
        text_before: String::new(),
        error_type: "api_error".into(),
        message: format!("Internal error for key {KEY}"),
    });
    let events = collect(&provider(&fake), hello()).await;
    match events.last().unwrap() {
        Err(e @ LlmError::ProviderError { detail }) => {
            assert!(
                detail.contains("Internal error") && !detail.contains(KEY),
                "{detail}"
            );
            assert!(!e.user_message().contains(KEY));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn stream_without_message_stop_is_cut() {
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::Raw(
        [
            ("message_start", r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"claude-test","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":5,"output_tokens":1}}}"#),
            ("content_block_start", r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Half"}}"#),
            ("content_block_start", r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_x","name":"f","input":{}}}"#),
            ("content_block_delta", r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"a\""}}"#),
        ]
        .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
        .concat(),
    ));
    let events = collect(&provider(&fake), hello()).await;
    assert_eq!(text_of(&events), "Half");
    assert_eq!(events.len(), 2, "no half-built tool call: {events:?}");
    assert!(matches!(events.last().unwrap(), Err(LlmError::StreamCut)));
}

#[tokio::test]
async fn dropping_the_stream_drops_the_connection() {
    let fake = FakeAnthropic::start().await;
    fake.push(FakeAnthropicReply::Stream {
        chunks: long_answer(),
        delay: WORD_DELAY,
    });
    let counts = || (fake.dropped_streams(), fake.completed_streams());
    drop_mid_answer(provider(&fake).stream_chat(hello()).await.unwrap(), counts).await;
}

#[tokio::test]
async fn the_key_never_shows() {
    let fake = FakeAnthropic::start().await;
    let config = config(&fake);
    assert!(!format!("{config:?}").contains(KEY));
    let p = Anthropic::new(config).unwrap();
    assert!(!format!("{p:?}").contains(KEY));

    fake.push(FakeAnthropicReply::error(
        401,
        format!("invalid x-api-key {KEY}"),
    ));
    let err = first_error(&fake).await;
    assert!(matches!(err, LlmError::Unauthorized { .. }));
    for text in [err.to_string(), format!("{err:?}"), err.user_message()] {
        assert!(!text.contains(KEY), "{text}");
    }
    assert!(
        err.user_message().contains("ANTHROPIC_API_KEY"),
        "{}",
        err.user_message()
    );

    fake.push(FakeAnthropicReply::error(
        400,
        format!("bad request from {KEY}"),
    ));
    let err = first_error(&fake).await;
    for text in [err.to_string(), format!("{err:?}"), err.user_message()] {
        assert!(!text.contains(KEY), "{text}");
    }
}
