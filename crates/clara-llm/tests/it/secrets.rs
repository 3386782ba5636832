//! No API key, header secret or URL password ever shows up in Debug, Display or a
//! user-facing message, even when a server echoes the key back.

use std::time::Duration;

use crate::common::closed_port;
use clara_core::ChatMessage;
use clara_llm::{
    Anthropic, AnthropicConfig, ChatProvider, ChatRequest, LlmError, Ollama, OllamaConfig,
    OpenAiCompatible, OpenAiCompatibleConfig, OpenAiEmbedder, OpenAiEmbedderConfig, RetryPolicy,
    Secret,
};
use clara_testkit::{FakeOpenAi, FakeReply};
use futures::StreamExt;

const KEY: &str = "sk-live-SUPERSECRET-4242";
const HEADER_SECRET: &str = "proxy-token-HUSH";
const URL_PASSWORD: &str = "pw-QUIET";

fn config(base_url: String) -> OpenAiCompatibleConfig {
    let mut config = OpenAiCompatibleConfig::new(base_url, "gpt-test");
    config.api_key = Some(Secret::from(KEY.to_owned()));
    config.extra_headers = vec![("X-Proxy-Auth".into(), HEADER_SECRET.into())];
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    config
}

fn assert_clean(what: &str, text: &str) {
    for secret in [KEY, HEADER_SECRET, URL_PASSWORD] {
        assert!(!text.contains(secret), "{what} leaks {secret}: {text}");
    }
}

fn assert_error_clean(err: &LlmError) {
    assert_clean("Display", &err.to_string());
    assert_clean("Debug", &format!("{err:?}"));
    assert_clean("user_message", &err.user_message());
}

fn request() -> ChatRequest {
    ChatRequest::new(vec![ChatMessage::user("hi")])
}

#[test]
fn debug_output_hides_secrets() {
    let url = format!("https://clara:{URL_PASSWORD}@llm.example.invalid/v1?api-key={KEY}");
    let config = config(url);
    assert_clean("config Debug", &format!("{config:?}"));
    let provider = OpenAiCompatible::new(config).unwrap();
    let debug = format!("{provider:?}");
    assert_clean("provider Debug", &debug);
    assert!(
        debug.contains("llm.example.invalid"),
        "still useful: {debug}"
    );
    assert_eq!(format!("{}", Secret::from(KEY)), "[redacted]");
}

/// Every provider and embedder, and its settings: the key, header values and the
/// URL's password and query never print, the host does.
#[test]
fn every_provider_and_embedder_hides_its_secrets_in_debug() {
    let url = format!("https://clara:{URL_PASSWORD}@llm.example.invalid/v1?api-key={KEY}");
    let headers = vec![("X-Proxy-Auth".to_owned(), Secret::from(HEADER_SECRET))];
    let mut shown = Vec::new();

    let anthropic = AnthropicConfig {
        base_url: url.clone(),
        ..AnthropicConfig::new(KEY, "claude-test")
    };
    shown.push(format!("{anthropic:?}"));
    shown.push(format!("{:?}", Anthropic::new(anthropic).unwrap()));

    let ollama = OllamaConfig {
        base_url: url.clone(),
        ..OllamaConfig::new("llama-test")
    };
    shown.push(format!("{ollama:?}"));
    shown.push(format!("{:?}", Ollama::new(ollama).unwrap()));

    let embedder = OpenAiEmbedderConfig {
        base_url: url.clone(),
        extra_headers: headers.clone(),
        ..OpenAiEmbedderConfig::openai(KEY, "embed-test")
    };
    shown.push(format!("{embedder:?}"));
    shown.push(format!("{:?}", OpenAiEmbedder::new(embedder).unwrap()));

    let openai = OpenAiCompatibleConfig {
        extra_headers: headers,
        ..config(url)
    };
    shown.push(format!("{openai:?}"));
    shown.push(format!("{:?}", OpenAiCompatible::new(openai).unwrap()));

    for text in shown {
        assert_clean("Debug", &text);
        assert!(text.contains("llm.example.invalid"), "still useful: {text}");
    }
}

#[tokio::test]
async fn errors_hide_secrets_even_when_the_server_echoes_them() {
    let fake = FakeOpenAi::start().await;
    let provider = OpenAiCompatible::new(config(fake.base_url())).unwrap();
    let echoed = format!("Incorrect API key provided: {KEY}. Header was {HEADER_SECRET}?");

    fake.push(FakeReply::error(401, echoed.clone()));
    let err = provider.stream_chat(request()).await.err().unwrap();
    assert!(matches!(err, LlmError::Unauthorized { .. }));
    assert_error_clean(&err);
    assert!(err.user_message().contains("API key"));

    fake.push(FakeReply::error(400, echoed.clone()));
    let err = provider.stream_chat(request()).await.err().unwrap();
    assert!(matches!(err, LlmError::BadRequest { .. }), "{err:?}");
    assert!(!err.to_string().contains(KEY), "{err}");

    fake.push(FakeReply::RawSse(format!(
        "data: {{\"error\":{{\"message\":\"bad key {KEY}\"}}}}\n\n"
    )));
    let events: Vec<_> = provider
        .stream_chat(request())
        .await
        .unwrap()
        .collect()
        .await;
    let err = events.into_iter().last().unwrap().unwrap_err();
    assert!(matches!(err, LlmError::ProviderError { .. }), "{err:?}");
    assert!(!err.to_string().contains(KEY), "{err}");
    assert_clean("user_message", &err.user_message());

    // The key did reach the server, where it belongs.
    let sent = fake.wait_for_requests(3, Duration::from_secs(5)).await;
    assert_eq!(
        sent[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(sent[0].header("x-proxy-auth"), Some(HEADER_SECRET));
}

#[tokio::test]
async fn unreachable_error_hides_url_credentials() {
    let port = closed_port();
    let url = format!("http://clara:{URL_PASSWORD}@127.0.0.1:{port}/v1?key={KEY}");
    let provider = OpenAiCompatible::new(config(url)).unwrap();
    let err = provider.stream_chat(request()).await.err().unwrap();
    assert!(matches!(err, LlmError::Unreachable { .. }), "{err:?}");
    assert_error_clean(&err);
}
