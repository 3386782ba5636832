//! The queue between actor and brain: a reply through Redis to a worker, against
//! the same reply in process, with an instant in-process model.
//!
//! Measured, for `LocalQueue` (baseline) and `RedisQueue` + one `Worker` on a
//! real Redis server:
//!
//! - reply round trip: from handing the job to the queue to the reply's end
//!   reaching the platform sink, one conversation at a time (p50/p99) — what
//!   Redis adds to every reply;
//! - throughput: many conversations at once, each sending its next thought when
//!   the previous reply ended (thoughts/s);
//! - cancellation: from the gateway cancelling a reply that is streaming to the
//!   worker dropping the model's stream (p50/p99).
//!
//! `cargo bench -p clara-runtime --bench queue` (needs Redis at
//! `CLARA_TEST_REDIS_URL`, default `redis://127.0.0.1:6379/0`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::{Author, ChannelKind, ChatMessage, ConversationRef, Outbound, Thought, ThoughtId};
use clara_llm::{ChatProvider, ChatRequest, ChatStream, LlmError, StreamEvent};
use clara_runtime::brain::{Brain, ReplyJob};
use clara_runtime::queue::redis::{RedisConfig, RedisQueue, Worker, WorkerConfig};
use clara_runtime::{LocalQueue, OutboundSink, ReplyQueue, SendQueue, SinkError};
use clara_tools::ToolRegistry;
use futures::StreamExt;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Answers "ok" at once; a prompt starting with "hold" gets one word and then
/// nothing, until the stream is dropped (which it records).
struct InstantModel {
    dropped: Arc<Mutex<Option<Instant>>>,
    dropped_now: Arc<Notify>,
}

/// Records when the stream it lives in is dropped.
struct DropMark {
    at: Arc<Mutex<Option<Instant>>>,
    wake: Arc<Notify>,
}

impl Drop for DropMark {
    fn drop(&mut self) {
        *self.at.lock() = Some(Instant::now());
        self.wake.notify_one();
    }
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
        let hold = request
            .messages
            .last()
            .is_some_and(|m| m.content.starts_with("hold"));
        if hold {
            let mark = DropMark {
                at: self.dropped.clone(),
                wake: self.dropped_now.clone(),
            };
            let first = futures::stream::iter([Ok(StreamEvent::Delta("…".into()))]);
            let never = futures::stream::pending().map(move |e| {
                let _ = &mark;
                e
            });
            return Ok(Box::pin(first.chain(never)));
        }
        Ok(Box::pin(futures::stream::iter([
            Ok(StreamEvent::Delta("ok".into())),
            Ok(StreamEvent::Finished {
                reason: Some("stop".into()),
                usage: None,
            }),
        ])))
    }
}

/// Notes when the first text of a reply reached the platform.
#[derive(Default)]
struct Sink {
    first_text: Notify,
}

#[async_trait]
impl OutboundSink for Sink {
    fn delivery(&self) -> Delivery {
        Delivery {
            mode: DeliveryMode::Stream,
            max_chars: usize::MAX,
        }
    }
    async fn deliver(&self, _: &ConversationRef, o: Outbound) -> Result<Option<String>, SinkError> {
        if matches!(o, Outbound::Delta { .. }) {
            self.first_text.notify_one();
        }
        Ok(None)
    }
}

fn job(channel: &str, text: &str) -> (ReplyJob, ConversationRef) {
    let conversation = ConversationRef {
        platform: "bench".into(),
        channel: channel.into(),
        kind: ChannelKind::Direct,
    };
    let thought = Thought {
        id: ThoughtId::new(),
        conversation: conversation.clone(),
        author: Author {
            platform_user_id: format!("u-{channel}"),
            display_name: "Person".into(),
        },
        parts: vec![text.into()],
        events: Vec::new(),
        tier: None,
        images: Vec::new(),
    };
    let request = ChatRequest::new(vec![ChatMessage::user(text.to_owned())]);
    (
        ReplyJob {
            thought,
            request,
            tools: None,
            recall: None,
        },
        conversation,
    )
}

struct Figures {
    round_trips: Vec<Duration>,
    per_second: f64,
    cancels: Vec<Duration>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(
    queue: Arc<dyn ReplyQueue>,
    model: &InstantModel,
    sequential: usize,
    conversations: usize,
    per_conversation: usize,
    cancels: usize,
) -> Figures {
    let sink = Arc::new(Sink::default());
    let one = |channel: String, text: &str| {
        let (job, conversation) = job(&channel, text);
        let send = SendQueue::new(sink.clone(), conversation, job.thought.id);
        (job, send)
    };
    // Warm-up: connections, the worker's first read.
    for i in 0..20 {
        let (job, send) = one(format!("warm{i}"), "hello");
        queue.run(job, send, CancellationToken::new()).await;
    }
    let mut round_trips = Vec::with_capacity(sequential);
    for i in 0..sequential {
        let (job, send) = one(format!("seq{i}"), "hello");
        let started = Instant::now();
        queue.run(job, send, CancellationToken::new()).await;
        round_trips.push(started.elapsed());
    }
    round_trips.sort();

    let started = Instant::now();
    let tasks: Vec<_> = (0..conversations)
        .map(|c| {
            let queue = queue.clone();
            let jobs: Vec<_> = (0..per_conversation)
                .map(|_| one(format!("c{c}"), "hello"))
                .collect();
            tokio::spawn(async move {
                for (job, send) in jobs {
                    queue.run(job, send, CancellationToken::new()).await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let per_second = (conversations * per_conversation) as f64 / started.elapsed().as_secs_f64();

    let mut cancel_delays = Vec::with_capacity(cancels);
    for i in 0..cancels {
        *model.dropped.lock() = None;
        // A sink of its own, so no earlier reply's text counts as this one's.
        let watch = Arc::new(Sink::default());
        let (job, conversation) = job(&format!("cancel{i}"), "hold on");
        let send = SendQueue::new(watch.clone(), conversation, job.thought.id);
        let cancel = CancellationToken::new();
        let reply = tokio::spawn({
            let queue = queue.clone();
            let cancel = cancel.clone();
            async move { queue.run(job, send, cancel).await }
        });
        // The reply is streaming: the worker holds the thought.
        watch.first_text.notified().await;
        let cancelled = Instant::now();
        cancel.cancel();
        while model.dropped.lock().is_none() {
            model.dropped_now.notified().await;
        }
        let dropped = model.dropped.lock().unwrap();
        cancel_delays.push(dropped.saturating_duration_since(cancelled));
        reply.await.unwrap();
    }
    cancel_delays.sort();
    Figures {
        round_trips,
        per_second,
        cancels: cancel_delays,
    }
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let sequential = env_or("CLARA_BENCH_REPLIES", if quick { 20 } else { 2_000 });
    let (conversations, per_conversation) = if quick { (4, 5) } else { (64, 50) };
    let cancels = if quick { 5 } else { 300 };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let model = Arc::new(InstantModel {
            dropped: Arc::default(),
            dropped_now: Arc::default(),
        });
        let brain = Brain {
            provider: model.clone(),
            tools: ToolRegistry::default(),
            memory: None,
            recall_timeout: Duration::from_millis(500),
            gate: Default::default(),
        };
        let local = measure(
            Arc::new(LocalQueue::new(brain.clone())),
            &model,
            sequential,
            conversations,
            per_conversation,
            cancels,
        )
        .await;

        let url = std::env::var("CLARA_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
        let mut config = RedisConfig::new(url);
        config.prefix = format!("clara-bench-{}", uuid::Uuid::new_v4().simple());
        let stop = CancellationToken::new();
        let queue = RedisQueue::connect(config.clone(), stop.clone())
            .await
            .expect("Redis for the bench (scripts/services.sh starts it)");
        let worker = Worker::connect(
            brain,
            WorkerConfig {
                redis: config.clone(),
                name: "bench".into(),
                concurrency: 128,
            },
        )
        .await
        .unwrap();
        tokio::spawn(worker.run(stop.clone()));
        let redis = measure(
            Arc::new(queue),
            &model,
            sequential,
            conversations,
            per_conversation,
            cancels,
        )
        .await;
        stop.cancel();
        let client = redis::Client::open(config.url.as_str()).unwrap();
        let mut c = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{}:*", config.prefix))
            .query_async(&mut c)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL").arg(keys).query_async(&mut c).await.unwrap();
        }

        println!(
            "Queue bench: instant in-process model, one reply at a time for the round trip ({sequential} replies), {conversations} conversations × {per_conversation} for throughput, {cancels} cancellations."
        );
        println!();
        println!("| queue | round trip p50 | p99 | thoughts/s | cancel → model stream dropped p50 | p99 |");
        println!("|---|---|---|---|---|---|");
        for (name, f) in [
            ("baseline: LocalQueue (in process)", &local),
            ("RedisQueue → 1 Worker", &redis),
        ] {
            println!(
                "| {name} | {} | {} | {:.0} | {} | {} |",
                us(percentile(&f.round_trips, 0.5)),
                us(percentile(&f.round_trips, 0.99)),
                f.per_second,
                us(percentile(&f.cancels, 0.5)),
                us(percentile(&f.cancels, 0.99)),
            );
        }
        println!(
            "| added by Redis | {} | {} | {:.2}× | {} | {} |",
            us(percentile(&redis.round_trips, 0.5)
                .saturating_sub(percentile(&local.round_trips, 0.5))),
            us(percentile(&redis.round_trips, 0.99)
                .saturating_sub(percentile(&local.round_trips, 0.99))),
            redis.per_second / local.per_second,
            us(percentile(&redis.cancels, 0.5).saturating_sub(percentile(&local.cancels, 0.5))),
            us(percentile(&redis.cancels, 0.99).saturating_sub(percentile(&local.cancels, 0.99))),
        );
    });
}
