//! What parsing a streamed answer costs, per provider wire format.
//!
//! Each provider streams a long answer (word-sized deltas) from its fake over
//! loopback HTTP, and the events are counted. Baseline, measured in the same run:
//! the same request to the same fake, its bytes read raw with reqwest and not
//! parsed at all. The ratio is the parser's share of the client's work; both sides
//! pay the same HTTP and fake-server costs.
//!
//! `cargo bench -p clara-llm --bench parsers` (env `CLARA_BENCH_WORDS`, default 20000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use clara_core::ChatMessage;
use clara_llm::{
    Anthropic, AnthropicConfig, ChatProvider, ChatRequest, Ollama, OllamaConfig, OpenAiCompatible,
    OpenAiCompatibleConfig, StreamEvent,
};
use clara_testkit::fake_anthropic::{FakeAnthropic, FakeAnthropicReply};
use clara_testkit::fake_ollama::{FakeOllama, FakeOllamaReply};
use clara_testkit::fake_openai::{FakeOpenAi, FakeReply};
use futures::StreamExt;
use serde_json::json;
use std::time::{Duration, Instant};

struct Run {
    tokens: usize,
    bytes: usize,
    elapsed: Duration,
}

async fn parsed(provider: &dyn ChatProvider) -> Run {
    let start = Instant::now();
    let mut stream = provider
        .stream_chat(ChatRequest::new(vec![ChatMessage::user("go")]))
        .await
        .unwrap();
    let (mut tokens, mut bytes) = (0, 0);
    while let Some(event) = stream.next().await {
        if let StreamEvent::Delta(text) = event.unwrap() {
            tokens += 1;
            bytes += text.len();
        }
    }
    Run {
        tokens,
        bytes,
        elapsed: start.elapsed(),
    }
}

async fn raw(request: reqwest::RequestBuilder) -> Run {
    let start = Instant::now();
    let mut body = request.send().await.unwrap().bytes_stream();
    let mut bytes = 0;
    while let Some(chunk) = body.next().await {
        bytes += chunk.unwrap().len();
    }
    Run {
        tokens: 0,
        bytes,
        elapsed: start.elapsed(),
    }
}

fn row(name: &str, parsed: &Run, raw: &Run) {
    let tps = parsed.tokens as f64 / parsed.elapsed.as_secs_f64();
    let wire_mb = raw.bytes as f64 / 1e6;
    println!(
        "| {name} | {:.0} | {:.1} | {:.1} | {:.2}× |",
        tps,
        wire_mb / parsed.elapsed.as_secs_f64(),
        wire_mb / raw.elapsed.as_secs_f64(),
        parsed.elapsed.as_secs_f64() / raw.elapsed.as_secs_f64()
    );
    assert!(parsed.bytes > 0);
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let words: usize = std::env::var("CLARA_BENCH_WORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 200 } else { 20_000 });
    let text: String = (0..words).map(|i| format!("word{} ", i % 1000)).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        println!("Streaming parse cost: {words} word-sized deltas per answer, loopback HTTP, fake servers.");
        println!();
        println!("| format | deltas/s parsed | MB/s of wire parsed | MB/s raw read (baseline) | time parsed / raw |");
        println!("|---|---|---|---|---|");

        let fake = FakeOpenAi::start().await;
        fake.set_default(FakeReply::Text(text.clone()));
        let provider = OpenAiCompatible::new(OpenAiCompatibleConfig::new(fake.base_url(), "m")).unwrap();
        parsed(&provider).await; // warm-up
        let p = parsed(&provider).await;
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": true});
        let r = raw(client.post(format!("{}/chat/completions", fake.base_url())).json(&body)).await;
        row("OpenAI SSE", &p, &r);

        let fake = FakeAnthropic::start().await;
        for _ in 0..3 {
            fake.push(FakeAnthropicReply::Text(text.clone()));
        }
        let provider = Anthropic::new(AnthropicConfig { base_url: fake.base_url(), ..AnthropicConfig::new("k", "m") }).unwrap();
        parsed(&provider).await;
        let p = parsed(&provider).await;
        let body = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "go"}], "stream": true});
        let request = client
            .post(format!("{}/v1/messages", fake.base_url()))
            .header("x-api-key", "k")
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        let r = raw(request).await;
        row("Anthropic SSE", &p, &r);

        let fake = FakeOllama::start().await;
        for _ in 0..3 {
            fake.push(FakeOllamaReply::Text(text.clone()));
        }
        let provider = Ollama::new(OllamaConfig { base_url: fake.base_url(), ..OllamaConfig::new("m") }).unwrap();
        parsed(&provider).await;
        let p = parsed(&provider).await;
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "go"}], "stream": true});
        let r = raw(client.post(format!("{}/api/chat", fake.base_url())).json(&body)).await;
        row("Ollama NDJSON", &p, &r);
    });
}
