//! The native Ollama provider against a fake Ollama server over real HTTP.

use crate::common::{
    WAIT, WORD_DELAY, assert_ends_in_provider_error, calls_of, collect, drop_mid_answer,
    fast_retry, hello, long_answer, stopped_with_usage, test_timeouts, text_of, weather_tool,
    with_tool_results,
};
use clara_core::{ChatMessage, Image, ToolCall};
use clara_llm::{ChatProvider, ChatRequest, LlmError, Ollama, OllamaConfig, StreamEvent};
use clara_testkit::{FakeOllama, FakeOllamaReply};
use serde_json::json;

fn config(fake: &FakeOllama) -> OllamaConfig {
    let mut config = OllamaConfig::new("llama3.2");
    // People paste the OpenAI-compatible URL; the native endpoint is found anyway.
    config.base_url = format!("{}/v1/", fake.base_url());
    config.num_ctx = Some(16384);
    config.retry = fast_retry();
    config.timeouts = test_timeouts();
    config
}

fn provider(fake: &FakeOllama) -> Ollama {
    Ollama::new(config(fake)).unwrap()
}

#[tokio::test]
async fn streamed_text_with_usage_and_options() {
    let fake = FakeOllama::start().await;
    fake.push(FakeOllamaReply::Text("Hi from llama".into()));
    let p = provider(&fake);
    assert_eq!((p.name(), p.model()), ("ollama", "llama3.2"));
    let mut request = hello();
    request.max_tokens = Some(200);
    request.temperature = Some(0.7);
    let events = collect(&p, request).await;
    assert_eq!(text_of(&events), "Hi from llama");
    assert_eq!(events.len(), 4, "{events:?}");
    let usage = stopped_with_usage(&events);
    assert_eq!(usage.output_tokens, 3);
    assert_eq!(usage.input_tokens, 3 + 4 + 2 + 4);
    let body = &fake.wait_for_requests(1, WAIT).await[0].body;
    assert_eq!(body["model"], "llama3.2");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["options"],
        json!({"temperature": 0.7, "num_predict": 200, "num_ctx": 16384})
    );
    assert_eq!(
        body["messages"],
        json!([
            {"role":"system","content":"You are Clara."},
            {"role":"user","content":"hello there"},
        ])
    );
}

#[tokio::test]
async fn tool_round_trip() {
    let fake = FakeOllama::start().await;
    let p = provider(&fake);
    fake.push(FakeOllamaReply::ToolCalls {
        text_before: String::new(),
        calls: vec![
            ("weather__forecast".into(), r#"{"city":"Oslo"}"#.into()),
            ("clock__now".into(), "{}".into()),
        ],
    });
    let mut request = hello();
    request.tools = vec![weather_tool()];
    let events = collect(&p, request.clone()).await;
    let calls: Vec<ToolCall> = calls_of(&events);
    assert_eq!(
        calls,
        vec![
            ToolCall {
                id: "call_1".into(),
                name: "weather__forecast".into(),
                arguments: r#"{"city":"Oslo"}"#.into()
            },
            ToolCall {
                id: "call_2".into(),
                name: "clock__now".into(),
                arguments: "{}".into()
            },
        ]
    );
    assert!(matches!(
        events.last().unwrap(),
        Ok(StreamEvent::Finished { reason: Some(r), .. }) if r == "tool_calls"
    ));

    // The calls' ids are `call_1` and `call_2` (checked above).
    let follow_up = with_tool_results(request, "", &calls, &["sunny", "12:00"]);
    fake.push(FakeOllamaReply::Text("Sunny.".into()));
    assert_eq!(p.complete(follow_up).await.unwrap(), "Sunny.");

    let requests = fake.wait_for_requests(2, WAIT).await;
    assert_eq!(
        requests[0].body["tools"],
        json!([{"type":"function","function":{"name":"weather__forecast","description":"Forecast.","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}])
    );
    let messages = &requests[1].body["messages"];
    assert_eq!(
        messages[2],
        json!({"role":"assistant","content":"","tool_calls":[
            {"function":{"name":"weather__forecast","arguments":{"city":"Oslo"}}},
            {"function":{"name":"clock__now","arguments":{}}},
        ]})
    );
    assert_eq!(
        messages[3],
        json!({"role":"tool","content":"sunny","tool_name":"weather__forecast"})
    );
    assert_eq!(
        messages[4],
        json!({"role":"tool","content":"12:00","tool_name":"clock__now"})
    );
}

#[tokio::test]
async fn images_are_base64_strings() {
    let fake = FakeOllama::start().await;
    let mut user = ChatMessage::user("What is this?");
    user.images = vec![Image::Bytes {
        media_type: "image/png".into(),
        data: b"\x89PNG".to_vec(),
    }];
    provider(&fake)
        .complete(ChatRequest::new(vec![user]))
        .await
        .unwrap();
    let body = &fake.wait_for_requests(1, WAIT).await[0].body;
    assert_eq!(
        body["messages"][0],
        json!({"role":"user","content":"What is this?","images":["iVBORw=="]})
    );
}

#[tokio::test]
async fn missing_model_is_not_found_with_a_pull_hint() {
    let fake = FakeOllama::start().await;
    fake.set_models(vec!["qwen3".into()]);
    let err = provider(&fake).stream_chat(hello()).await.err().unwrap();
    match &err {
        LlmError::NotFound { model, detail } => {
            assert_eq!(model, "llama3.2");
            assert!(detail.contains("not found"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.user_message().contains("ollama pull llama3.2"),
        "{}",
        err.user_message()
    );
    assert_eq!(fake.request_count(), 1, "404 is not retried");

    // A listed model (`qwen3` is `qwen3:latest`) answers.
    let mut request = hello();
    request.model = Some("qwen3:latest".into());
    assert!(provider(&fake).complete(request).await.is_ok());
}

#[tokio::test]
async fn server_errors_retry_and_bad_requests_do_not() {
    let fake = FakeOllama::start().await;
    fake.push(FakeOllamaReply::Error {
        status: 500,
        message: "llama runner process has terminated".into(),
    });
    fake.push(FakeOllamaReply::Error {
        status: 503,
        message: "server busy, please try again.  maximum pending requests exceeded".into(),
    });
    assert_eq!(
        provider(&fake).complete(hello()).await.unwrap(),
        "You said: hello there"
    );
    assert_eq!(fake.request_count(), 3);

    fake.push(FakeOllamaReply::Error {
        status: 400,
        message: "registry.ollama.ai/library/llama3.2:latest does not support tools".into(),
    });
    match provider(&fake).stream_chat(hello()).await.err().unwrap() {
        LlmError::BadRequest {
            status: 400,
            detail,
        } => assert!(detail.contains("does not support tools"), "{detail}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn error_line_mid_stream() {
    let fake = FakeOllama::start().await;
    fake.push(FakeOllamaReply::ErrorLine {
        text_before: "Partial ".into(),
        message: "an error was encountered while running the model: unexpected EOF".into(),
    });
    let events = collect(&provider(&fake), hello()).await;
    assert_eq!(text_of(&events), "Partial ");
    assert_ends_in_provider_error(&events, "unexpected EOF");
}

#[tokio::test]
async fn stream_without_done_is_cut_and_a_last_line_without_newline_counts() {
    let fake = FakeOllama::start().await;
    fake.push(FakeOllamaReply::Raw(
        "{\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"content\":\"Half\"},\"done\":false}\n\
         {\"model\":\"llama3.2\",\"message\":{\"role\":\"assistant\",\"con"
            .into(),
    ));
    let events = collect(&provider(&fake), hello()).await;
    assert_eq!(text_of(&events), "Half");
    assert!(
        matches!(events.last().unwrap(), Err(LlmError::StreamCut)),
        "{events:?}"
    );

    fake.push(FakeOllamaReply::Raw(
        "{\"message\":{\"role\":\"assistant\",\"content\":\"Whole\"},\"done\":false}\n\n\
         {\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"length\",\"eval_count\":1}"
            .into(),
    ));
    let events = collect(&provider(&fake), hello()).await;
    assert_eq!(text_of(&events), "Whole");
    assert!(matches!(
        events.last().unwrap(),
        Ok(StreamEvent::Finished { reason: Some(r), usage: Some(u) }) if r == "length" && u.output_tokens == 1
    ));
}

#[tokio::test]
async fn dropping_the_stream_drops_the_connection() {
    let fake = FakeOllama::start().await;
    fake.push(FakeOllamaReply::Stream {
        chunks: long_answer(),
        delay: WORD_DELAY,
    });
    let counts = || (fake.dropped_streams(), fake.completed_streams());
    drop_mid_answer(provider(&fake).stream_chat(hello()).await.unwrap(), counts).await;
}

#[tokio::test]
async fn tags_lists_the_models() {
    let fake = FakeOllama::start().await;
    fake.set_models(vec!["llama3.2".into(), "qwen3:8b".into()]);
    let body: serde_json::Value = reqwest_get(&format!("{}/api/tags", fake.base_url())).await;
    let names: Vec<&str> = body["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["llama3.2:latest", "qwen3:8b"]);
}

/// A bare HTTP GET (no reqwest in dev-dependencies): enough for one small JSON body.
async fn reqwest_get(url: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut socket = tokio::net::TcpStream::connect(host).await.unwrap();
    socket
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .unwrap();
    let mut response = String::new();
    socket.read_to_string(&mut response).await.unwrap();
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str(body).unwrap()
}
