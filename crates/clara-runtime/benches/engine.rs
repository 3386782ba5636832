//! Clara's own overhead, with an instant in-process model.
//!
//! Many conversations talk at once; each sends its next message when the previous
//! answer has ended (as people do). The chunker is set to emit at once, so the
//! quiet period is excluded, and the store is a real SQLite file. Measured:
//!
//! - thoughts per second through the whole engine (ingress, actor, chunker,
//!   store writes, prompt assembly, reply task, send queue);
//! - added latency: from `Engine::submit` to the model request leaving, p50/p99.
//!
//! Baseline, measured in the same run on the same machine: the same number of
//! requests made by the same number of tasks straight to the same instant model,
//! with no engine in between. The ratio is what Clara adds.
//!
//! `cargo bench -p clara-runtime --bench engine` (env: `CLARA_BENCH_CONVERSATIONS`,
//! `CLARA_BENCH_THOUGHTS` per conversation).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use clara_core::chunker::ChunkerConfig;
use clara_core::testing::EndSink;
use clara_core::{Author, ChannelKind, ChatMessage, ConversationRef, EventId, Inbound};
use clara_llm::{ChatProvider, ChatRequest, ChatStream, LlmError, StreamEvent, Usage};
use clara_runtime::{Engine, EngineConfig};
use clara_store::Store;
use futures::stream;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// When each message was submitted, by its text ("c<conv>-t<n>").
#[derive(Default)]
struct Clock {
    submitted: Mutex<HashMap<String, Instant>>,
    latencies: Mutex<Vec<Duration>>,
    cold: Mutex<Vec<Duration>>,
}

/// Answers at once with one word.
struct InstantModel {
    clock: Arc<Clock>,
}

#[async_trait]
impl ChatProvider for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }
    fn model(&self) -> &str {
        "instant"
    }
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let left = Instant::now();
        if let Some(last) = request.messages.last() {
            let submitted = self.clock.submitted.lock().remove(&last.content);
            if let Some(at) = submitted {
                let sample = left - at;
                if last.content.ends_with("-t0") {
                    self.clock.cold.lock().push(sample);
                } else {
                    self.clock.latencies.lock().push(sample);
                }
            }
        }
        Ok(Box::pin(stream::iter([
            Ok(StreamEvent::Delta("ok".into())),
            Ok(StreamEvent::Finished {
                reason: Some("stop".into()),
                usage: Some(Usage::default()),
            }),
        ])))
    }
}

struct Figures {
    thoughts: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
    cold_p50: Duration,
}

impl Figures {
    fn per_second(&self) -> f64 {
        self.thoughts as f64 / self.elapsed.as_secs_f64()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

async fn through_engine(conversations: usize, per_conversation: usize) -> Figures {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
    let clock = Arc::new(Clock::default());
    let provider = Arc::new(InstantModel {
        clock: clock.clone(),
    });
    let config = EngineConfig {
        chunker: ChunkerConfig::immediate(),
        ..EngineConfig::default()
    };
    let engine = Engine::new(config, store, provider);
    let waiters: HashMap<String, Arc<Notify>> = (0..conversations)
        .map(|c| (format!("c{c}"), Arc::new(Notify::new())))
        .collect();
    let sink = EndSink::new(waiters.clone());
    engine.attach("bench", sink);

    // Each conversation's first thought starts its actor (loading from the store);
    // that start-up is measured on its own, then the steady state is timed.
    let talk = |range: std::ops::Range<usize>| {
        let mut tasks = Vec::new();
        for c in 0..conversations {
            let engine = engine.clone();
            let clock = clock.clone();
            let done = waiters[&format!("c{c}")].clone();
            let range = range.clone();
            tasks.push(tokio::spawn(async move {
                let conversation = ConversationRef {
                    platform: "bench".into(),
                    channel: format!("c{c}"),
                    kind: ChannelKind::Direct,
                };
                let author = Author {
                    platform_user_id: format!("u{c}"),
                    display_name: format!("User {c}"),
                };
                for t in range {
                    let text = format!("c{c}-t{t}");
                    clock.submitted.lock().insert(text.clone(), Instant::now());
                    let inbound = Inbound {
                        event_id: EventId(text.clone()),
                        conversation: conversation.clone(),
                        author: author.clone(),
                        text,
                        sent_at_ms: 0,
                        tier: None,
                        images: Vec::new(),
                        files: Vec::new(),
                        replying_to: Vec::new(),
                    };
                    engine.submit(inbound).await.unwrap();
                    done.notified().await;
                }
            }));
        }
        tasks
    };
    for t in talk(0..1) {
        t.await.unwrap();
    }
    let start = Instant::now();
    for t in talk(1..per_conversation) {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    engine.shutdown().await;
    let mut warm = clock.latencies.lock().clone();
    warm.sort();
    let mut cold = clock.cold.lock().clone();
    cold.sort();
    Figures {
        thoughts: conversations * (per_conversation - 1),
        elapsed,
        p50: percentile(&warm, 0.50),
        p99: percentile(&warm, 0.99),
        cold_p50: percentile(&cold, 0.50),
    }
}

/// The same requests, the same concurrency, straight to the model.
async fn direct(conversations: usize, per_conversation: usize) -> Figures {
    let clock = Arc::new(Clock::default());
    let provider: Arc<dyn ChatProvider> = Arc::new(InstantModel {
        clock: clock.clone(),
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..conversations {
        let provider = provider.clone();
        let clock = clock.clone();
        tasks.push(tokio::spawn(async move {
            for t in 0..per_conversation {
                let text = format!("c{c}-t{t}");
                clock.submitted.lock().insert(text.clone(), Instant::now());
                // A spawned task per request, as the engine spawns one per reply.
                let p = provider.clone();
                let request = ChatRequest::new(vec![ChatMessage::user(text)]);
                tokio::spawn(async move {
                    use futures::StreamExt;
                    let mut s = p.stream_chat(request).await.unwrap();
                    while s.next().await.is_some() {}
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed();
    let mut warm = clock.latencies.lock().clone();
    warm.sort();
    Figures {
        thoughts: conversations * per_conversation,
        elapsed,
        p50: percentile(&warm, 0.50),
        p99: percentile(&warm, 0.99),
        cold_p50: Duration::ZERO,
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn row(name: &str, f: &Figures) -> String {
    format!(
        "| {name} | {:.0} | {} | {} |",
        f.per_second(),
        us(f.p50),
        us(f.p99)
    )
}

fn ratio(clara: &Figures, base: &Figures) -> String {
    format!(
        "| ratio Clara / baseline | {:.3}× | {:.0}× | {:.0}× |",
        clara.per_second() / base.per_second(),
        clara.p50.as_secs_f64() / base.p50.as_secs_f64().max(1e-9),
        clara.p99.as_secs_f64() / base.p99.as_secs_f64().max(1e-9)
    )
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let conversations = env_or("CLARA_BENCH_CONVERSATIONS", if quick { 10 } else { 500 });
    let per_conversation = env_or("CLARA_BENCH_THOUGHTS", if quick { 3 } else { 40 });
    let (light_conversations, light_thoughts) = if quick { (2, 5) } else { (4, 500) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // Warm-up: page in code and SQLite.
        through_engine(conversations.min(20), 3).await;

        // Throughput: many people at once, each waiting for their answer.
        let base = direct(conversations, per_conversation).await;
        let clara = through_engine(conversations, per_conversation).await;
        // Added latency: a light load, so the figure is Clara's work, not a queue.
        let light_base = direct(light_conversations, light_thoughts).await;
        let light = through_engine(light_conversations, light_thoughts).await;

        println!("Engine bench: instant in-process model, chunker emitting at once, real SQLite file, tokio with 2 worker threads.");
        println!("Latency is from Engine::submit to the model request leaving.");
        println!();
        println!("Saturation: {conversations} conversations talking at once, {per_conversation} thoughts each (the first, which starts the conversation, timed apart)");
        println!();
        println!("| path | thoughts/s | p50 | p99 |");
        println!("|---|---|---|---|");
        println!("{}", row("baseline: tasks calling the model directly", &base));
        println!("{}", row("Clara engine", &clara));
        println!("{}", ratio(&clara, &base));
        println!();
        println!("Light load: {light_conversations} conversations, {light_thoughts} thoughts each");
        println!();
        println!("| path | thoughts/s | p50 | p99 |");
        println!("|---|---|---|---|");
        println!("{}", row("baseline: tasks calling the model directly", &light_base));
        println!("{}", row("Clara engine", &light));
        println!("{}", ratio(&light, &light_base));
        println!();
        println!(
            "First thought of a conversation (actor start: load window, session, summary from SQLite): p50 {} at light load, {} with {conversations} starting at once.",
            us(light.cold_p50),
            us(clara.cold_p50)
        );
    });
}
