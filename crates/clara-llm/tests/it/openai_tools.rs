//! Tools, images and flavors of the OpenAI-compatible provider, over real HTTP.

use crate::common::{WAIT, png_and_url, with_tool_results};
use clara_core::{ChatMessage, ToolCall, ToolSpec};
use clara_llm::{
    ChatProvider, ChatRequest, LlmError, OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy,
    Secret, StreamEvent,
};
use clara_testkit::{FakeOpenAi, FakeReply};
use futures::StreamExt;
use serde_json::json;

fn provider(base_url: String) -> OpenAiCompatible {
    let mut config = OpenAiCompatibleConfig::new(base_url, "gpt-test");
    config.retry = RetryPolicy::no_retries();
    OpenAiCompatible::new(config).unwrap()
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "weather__forecast".into(),
        description: "The forecast for a city.".into(),
        parameters: json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}),
    }
}

async fn events(p: &OpenAiCompatible, request: ChatRequest) -> Vec<StreamEvent> {
    p.stream_chat(request)
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await
}

fn tool_calls(events: &[StreamEvent]) -> Vec<ToolCall> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCall(c) => Some(c.clone()),
            _ => None,
        })
        .collect()
}

async fn round_trip(fragmented: bool) {
    let fake = FakeOpenAi::start().await;
    let p = provider(fake.base_url());
    fake.push(FakeReply::ToolCalls {
        text_before: "Let me check.".into(),
        calls: vec![
            (
                "weather__forecast".into(),
                r#"{"city":"Oslo","days":3}"#.into(),
            ),
            ("weather__forecast".into(), r#"{"city":"Bergen"}"#.into()),
        ],
        fragmented,
    });
    let mut request = ChatRequest::new(vec![
        ChatMessage::system("You are Clara."),
        ChatMessage::user("Weather in Oslo and Bergen?"),
    ]);
    request.tools = vec![weather_tool()];
    let first = events(&p, request.clone()).await;

    let text: String = first
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Delta(d) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "Let me check.");
    let calls = tool_calls(&first);
    assert_eq!(calls.len(), 2, "{first:?}");
    assert_eq!(calls[0].name, "weather__forecast");
    assert_eq!(calls[0].arguments, r#"{"city":"Oslo","days":3}"#);
    assert_eq!(calls[1].arguments, r#"{"city":"Bergen"}"#);
    assert_ne!(calls[0].id, calls[1].id);
    match first.last().unwrap() {
        StreamEvent::Finished { reason, usage } => {
            assert_eq!(reason.as_deref(), Some("tool_calls"));
            assert!(usage.is_some());
        }
        other => panic!("{other:?}"),
    }
    // Calls come before Finished and after the text.
    let positions: Vec<usize> = first
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, StreamEvent::ToolCall(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(positions, vec![first.len() - 3, first.len() - 2]);

    // The follow-up carries the calls and their results in OpenAI's shape.
    let follow_up = with_tool_results(request.clone(), "Let me check.", &calls, &["sunny", "rain"]);
    fake.push(FakeReply::text("Oslo sunny, Bergen rain."));
    let second = events(&p, follow_up).await;
    assert!(tool_calls(&second).is_empty());

    let requests = fake.wait_for_requests(2, WAIT).await;
    assert_eq!(
        requests[0].body["tools"],
        json!([{"type":"function","function":{
            "name":"weather__forecast",
            "description":"The forecast for a city.",
            "parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}
        }}])
    );
    let messages = requests[1].body["messages"].as_array().unwrap();
    assert_eq!(
        messages[2],
        json!({"role":"assistant","content":"Let me check.","tool_calls":[
            {"id": calls[0].id, "type":"function","function":{"name":"weather__forecast","arguments":"{\"city\":\"Oslo\",\"days\":3}"}},
            {"id": calls[1].id, "type":"function","function":{"name":"weather__forecast","arguments":"{\"city\":\"Bergen\"}"}},
        ]})
    );
    assert_eq!(
        messages[3],
        json!({"role":"tool","tool_call_id": calls[0].id, "content":"sunny"})
    );
    assert_eq!(
        messages[4],
        json!({"role":"tool","tool_call_id": calls[1].id, "content":"rain"})
    );
}

#[tokio::test]
async fn tool_round_trip_with_fragmented_arguments() {
    round_trip(true).await;
}

#[tokio::test]
async fn tool_round_trip_with_whole_calls() {
    round_trip(false).await;
}

#[tokio::test]
async fn servers_without_index_and_invalid_json_are_tolerated() {
    let fake = FakeOpenAi::start().await;
    let sse = [
        r#"data: {"choices":[{"delta":{"role":"assistant","content":null}}]}"#,
        r#"data: {"choices":[{"delta":{"tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{\"x\": tru"}}]}}]}"#,
        r#"data: {"choices":[{"delta":{},"finish_reason":"tool_calls"}]}"#,
        "data: [DONE]",
    ]
    .map(|l| format!("{l}\n\n"))
    .concat();
    fake.push(FakeReply::RawSse(sse));
    let events = events(
        &provider(fake.base_url()),
        ChatRequest::new(vec![ChatMessage::user("hi")]),
    )
    .await;
    // Invalid JSON is the model's, passed on as text for the tool loop to report.
    assert_eq!(
        tool_calls(&events),
        vec![ToolCall {
            id: "a".into(),
            name: "f".into(),
            arguments: "{\"x\": tru".into()
        }]
    );
}

#[tokio::test]
async fn images_are_sent_as_content_parts() {
    let fake = FakeOpenAi::start().await;
    let mut user = ChatMessage::user("What is in this picture?");
    user.images = png_and_url();
    provider(fake.base_url())
        .complete(ChatRequest::new(vec![user]))
        .await
        .unwrap();
    let requests = fake.wait_for_requests(1, WAIT).await;
    assert_eq!(
        requests[0].body["messages"][0],
        json!({"role":"user","content":[
            {"type":"text","text":"What is in this picture?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw=="}},
            {"type":"image_url","image_url":{"url":"https://example.invalid/cat.jpg"}},
        ]})
    );
    assert_eq!(requests[0].user_texts(), vec!["What is in this picture?"]);
}

#[tokio::test]
async fn openrouter_flavor_sends_attribution_and_reads_cost() {
    let fake = FakeOpenAi::start().await;
    let mut config = OpenAiCompatibleConfig::openrouter(
        "sk-or-test",
        "anthropic/claude-sonnet-4",
        Some("https://clara.example".into()),
        Some("Clara".into()),
    );
    assert_eq!(config.base_url, "https://openrouter.ai/api/v1");
    // Point it at the fake: the flavor follows the URL's host, so the test checks the
    // headers here and the body and cost on a request to the real host's shape below.
    config.base_url = fake.base_url();
    let p = OpenAiCompatible::new(config).unwrap();
    assert_eq!(p.name(), "openai-compatible");
    fake.push(FakeReply::RawSse(
        [
            r#"data: {"choices":[{"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#,
            r#"data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":1,"cost":0.00042}}"#,
            "data: [DONE]",
        ]
        .map(|l| format!("{l}\n\n"))
        .concat(),
    ));
    let events = events(&p, ChatRequest::new(vec![ChatMessage::user("hi")])).await;
    match events.last().unwrap() {
        StreamEvent::Finished {
            usage: Some(usage), ..
        } => assert_eq!(usage.cost_usd, Some(0.00042)),
        other => panic!("{other:?}"),
    }
    let requests = fake.wait_for_requests(1, WAIT).await;
    assert_eq!(
        requests[0].header("http-referer"),
        Some("https://clara.example")
    );
    assert_eq!(requests[0].header("x-title"), Some("Clara"));
    assert_eq!(
        requests[0].header("authorization"),
        Some("Bearer sk-or-test")
    );

    let real = OpenAiCompatible::new(OpenAiCompatibleConfig::openrouter(
        Secret::from("k"),
        "m",
        None,
        None,
    ))
    .unwrap();
    assert_eq!(real.name(), "openrouter");
    assert!(!format!("{real:?}").contains("\"k\""));
}

#[tokio::test]
async fn unauthorized_names_the_flavors_key() {
    let fake = FakeOpenAi::start().await;
    fake.push(FakeReply::error(401, "bad key"));
    let err = provider(fake.base_url())
        .stream_chat(ChatRequest::new(vec![ChatMessage::user("hi")]))
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, LlmError::Unauthorized { key_setting: None }),
        "{err:?}"
    );
    assert!(err.user_message().contains("API key"));
}
