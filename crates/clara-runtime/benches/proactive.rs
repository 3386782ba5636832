//! What Clara adds to deliver a message it starts (a reminder, an alert), with
//! many people at once.
//!
//! The engine runs as people run it: memory on (an in-process bag-of-words
//! embedder, so no model is loaded), a real SQLite file, an instant in-process
//! chat model (only the setup's first messages use it), and a recording sink
//! (`clara_core::testing::RecordingSink`) in streaming and in edits mode,
//! wrapped to note when each message's `End` reached it. Every person has said
//! one message first, so Clara knows them and their conversation, and the
//! store holds their older messages (100 000 by default), as a deployment
//! that has been talking for a while does.
//!
//! Measured, for N people at once:
//!
//! - **reminders**: one reminder each, all due; the test clock moves past them
//!   and `Scheduler::fire_due` + `ProactiveDelivery::deliver_due` run in a loop
//!   until every one is delivered (fired into the outbox, claimed, handed to
//!   the conversation's actor, said through the send queue, stored, marked
//!   sent);
//! - **alerts**: `Proactive::alert` for each (N at once), then the same
//!   delivery loop;
//! - **outbox bookkeeping alone**: the same N rows claimed and marked sent
//!   with nothing delivered, to show the store's share;
//! - **one at a time**: a single person's reminders and alerts, each alone,
//!   for the latency of one message when nothing queues.
//!
//! Baselines, measured in the same run on the same machine: the same platform
//! calls the send queue made, replayed straight into the same kind of sink
//! (what the adapter costs anyway), and the same message stored with one
//! `Store::append_messages` call each (what storing it costs at all). Their sum
//! is the floor any system that sends a message and keeps it pays; the ratio
//! to it is what Clara adds.
//!
//! `cargo bench -p clara-runtime --bench proactive` (env: `CLARA_BENCH_PEOPLE`,
//! default 200; `CLARA_BENCH_ROUNDS`, rounds of them, default 3, the median
//! counts; `CLARA_BENCH_ALONE`, messages one at a time, default 100;
//! `CLARA_BENCH_HISTORY`, older messages in the store before it starts,
//! default 100 000).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use clara_core::chunker::ChunkerConfig;
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::testing::RecordingSink;
use clara_core::{
    Author, ChannelKind, ConversationId, ConversationRef, EventId, Inbound, MessageId, Outbound,
    Role, SessionId, ThoughtId, UserId,
};
use clara_llm::embed::{EmbedError, Embedder, EmbeddingModel};
use clara_llm::{ChatProvider, ChatRequest, ChatStream, LlmError, StreamEvent, Usage};
use clara_memory::{Rook, RookConfig};
use clara_runtime::proactive::ProactiveConfig;
use clara_runtime::{
    Clock, Engine, EngineConfig, ManualClock, OutboundSink, Proactive, ProactiveDelivery,
    ScheduleBook, ScheduleRequest, Scheduler, SinkError,
};
use clara_store::{MessageStatus, NewMessage, NewProactive, ProactiveKind, ScheduleKind, Store};
use clara_tools::ToolRegistry;
use futures::stream;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// 2026-12-08 08:00 UTC: where the test clock starts.
const START_MS: i64 = 1_796_716_800_000;

/// Answers at once with one word (only the setup's messages reach it).
struct InstantModel;

#[async_trait]
impl ChatProvider for InstantModel {
    fn name(&self) -> &str {
        "instant"
    }
    fn model(&self) -> &str {
        "instant"
    }
    async fn stream_chat(&self, _: ChatRequest) -> Result<ChatStream, LlmError> {
        Ok(Box::pin(stream::iter([
            Ok(StreamEvent::Delta("ok".into())),
            Ok(StreamEvent::Finished {
                reason: Some("stop".into()),
                usage: Some(Usage::default()),
            }),
        ])))
    }
}

/// The fake OpenAI server's bag-of-words embedding, in process: memory is on
/// without loading a model.
struct WordsEmbedder(EmbeddingModel);

#[async_trait]
impl Embedder for WordsEmbedder {
    fn model(&self) -> &EmbeddingModel {
        &self.0
    }
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts
            .iter()
            .map(|t| clara_testkit::fake_openai::fake_embedding(t, 64))
            .collect())
    }
}

/// A [`RecordingSink`] that also notes when each message's `End` reached it.
struct TimedSink {
    inner: Arc<RecordingSink>,
    ends: Mutex<Vec<Instant>>,
}

impl TimedSink {
    fn new(mode: &DeliveryMode) -> Arc<Self> {
        Arc::new(Self {
            inner: RecordingSink::new(mode.clone(), 4096),
            ends: Mutex::new(Vec::new()),
        })
    }

    /// Forgets the ends noted so far; returns how many calls were recorded.
    fn reset(&self) -> usize {
        self.ends.lock().clear();
        self.inner.calls().len()
    }

    /// Each noted end's time after `start`, sorted.
    fn since(&self, start: Instant) -> Vec<Duration> {
        let mut all: Vec<Duration> = self.ends.lock().iter().map(|t| *t - start).collect();
        all.sort();
        all
    }
}

#[async_trait]
impl OutboundSink for TimedSink {
    fn delivery(&self) -> Delivery {
        self.inner.delivery()
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let end = matches!(outbound, Outbound::End { .. });
        let id = self.inner.deliver(conversation, outbound).await;
        if end {
            self.ends.lock().push(Instant::now());
        }
        id
    }
}

/// One person Clara knows, with their conversation.
struct Person {
    user: UserId,
    conversation: ConversationId,
    reference: ConversationRef,
    session: SessionId,
}

/// An engine with memory on, N people who each said hello, and what fires.
struct Bench {
    engine: Engine,
    sink: Arc<TimedSink>,
    people: Vec<Person>,
    clock: ManualClock,
    book: ScheduleBook,
    scheduler: Scheduler,
    delivery: ProactiveDelivery,
    proactive: Proactive,
    _dir: tempfile::TempDir,
}

fn reference(i: usize) -> ConversationRef {
    ConversationRef {
        platform: "bench".into(),
        channel: format!("c{i}"),
        kind: ChannelKind::Direct,
    }
}

async fn bench_on(mode: &DeliveryMode, people: usize, history: usize) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bench.db")).await.unwrap();
    let embedder = Arc::new(WordsEmbedder(EmbeddingModel {
        name: "bench/words".into(),
        dim: 64,
    }));
    let rook = Rook::open(store.clone(), embedder, None, RookConfig::default())
        .await
        .unwrap();
    let config = EngineConfig {
        chunker: ChunkerConfig::immediate(),
        ..EngineConfig::default()
    };
    let engine = Engine::with_memory(
        config,
        store.clone(),
        Arc::new(InstantModel),
        ToolRegistry::default(),
        rook,
    );
    let sink = TimedSink::new(mode);
    engine.attach("bench", sink.clone());

    // Everyone says hello at once; Clara answers each.
    futures::future::join_all((0..people).map(|i| {
        let engine = engine.clone();
        async move {
            engine
                .submit(Inbound {
                    event_id: EventId(format!("hello-{i}")),
                    conversation: reference(i),
                    author: Author {
                        platform_user_id: format!("u{i}"),
                        display_name: format!("Person {i}"),
                    },
                    text: format!("hello, I am person {i}"),
                    sent_at_ms: 0,
                    tier: None,
                    images: Vec::new(),
                    files: Vec::new(),
                    replying_to: Vec::new(),
                })
                .await
                .unwrap();
        }
    }))
    .await;
    while sink.ends.lock().len() < people {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for i in 0..people {
        engine.wait_idle(&reference(i)).await;
    }
    // The hellos are written in group commits; read them once they are in.
    store.writer().flush().await.unwrap();
    let mut list = Vec::with_capacity(people);
    for i in 0..people {
        let user = store.find_user("bench", &format!("u{i}")).await.unwrap();
        let conversation = store.resolve_conversation(&reference(i)).await.unwrap();
        let stored = store.recent_messages(conversation, 0, 1, 10).await.unwrap();
        list.push(Person {
            user: user.unwrap(),
            conversation,
            reference: reference(i),
            session: stored[0].session,
        });
    }
    seed_history(&store, &list, history).await;
    sink.reset();

    let clock = ManualClock::at(START_MS);
    let clock_dyn: Arc<dyn Clock> = Arc::new(clock.clone());
    let signals = Arc::clone(engine.proactive_signals());
    Bench {
        book: ScheduleBook::new(store.clone(), Arc::clone(&clock_dyn), Arc::clone(&signals)),
        scheduler: Scheduler::new(
            store.clone(),
            Arc::clone(&clock_dyn),
            Arc::clone(&signals),
            ProactiveConfig::default(),
        ),
        delivery: ProactiveDelivery::new(
            engine.clone(),
            Arc::clone(&clock_dyn),
            ProactiveConfig::default(),
        ),
        proactive: Proactive::new(store, signals, clock_dyn),
        engine,
        sink,
        people: list,
        clock,
        _dir: dir,
    }
}

/// Gives the store `total` older messages, spread over `people`, half of
/// them theirs: a deployment that has been talking for a while.
async fn seed_history(store: &Store, people: &[Person], total: usize) {
    let per_person = total / people.len().max(1);
    let long_ago = clara_runtime::clock::now_ms() - 365 * 86_400_000;
    let mut batch = Vec::with_capacity(1000);
    for (i, person) in people.iter().enumerate() {
        for n in 0..per_person {
            let mine = n % 2 == 0;
            batch.push(NewMessage {
                id: MessageId::new(),
                conversation: person.conversation,
                session: person.session,
                thought: ThoughtId::new(),
                user: mine.then_some(person.user),
                role: if mine { Role::User } else { Role::Assistant },
                content: format!("an older message of person {i}, number {n}"),
                event_id: Some(EventId(format!("old-{i}-{n}"))),
                status: MessageStatus::Complete,
                created_at_ms: long_ago + i64::try_from(n).unwrap(),
                usage: None,
                tool_runs: Vec::new(),
            });
            if batch.len() == 1000 {
                store.append_messages(&batch).await.unwrap();
                batch.clear();
            }
        }
    }
    store.append_messages(&batch).await.unwrap();
}

/// What one measured batch took.
struct Figures {
    messages: usize,
    elapsed: Duration,
    /// Each message's time from the start to its `End` at the sink, sorted
    /// (one at a time: each message's own time).
    each: Vec<Duration>,
}

impl Figures {
    fn per_message(&self) -> Duration {
        self.elapsed / u32::try_from(self.messages.max(1)).unwrap()
    }
    fn per_second(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
    fn p(&self, q: f64) -> Duration {
        percentile(&self.each, q)
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// Where the time of a delivery loop went.
#[derive(Default)]
struct Split {
    /// In `Proactive::alert`.
    enqueue: Duration,
    /// In `Scheduler::fire_due`.
    fire: Duration,
    /// In `ProactiveDelivery::deliver_due`.
    deliver: Duration,
    /// Bookkeeping alone: in `Store::claim_proactive`.
    claim: Duration,
    /// Bookkeeping alone: in `Store::proactive_sent`.
    sent: Duration,
}

/// The round whose total time is the median of `rounds`.
fn median<T>(mut rounds: Vec<(Figures, T)>) -> (Figures, T) {
    rounds.sort_by_key(|(f, _)| f.elapsed);
    let middle = rounds.len() / 2;
    rounds.swap_remove(middle)
}

impl Bench {
    /// Fires and delivers until nothing is left; returns the split.
    async fn drain(&self) -> Split {
        let mut split = Split::default();
        loop {
            let t = Instant::now();
            let fired = self.scheduler.fire_due().await.unwrap();
            split.fire += t.elapsed();
            let t = Instant::now();
            let delivered = self.delivery.deliver_due().await.unwrap();
            split.deliver += t.elapsed();
            if fired == 0 && delivered == 0 {
                return split;
            }
        }
    }

    async fn remind(&self, person: &Person) {
        self.book
            .add(ScheduleRequest {
                user: person.user,
                person: "Person",
                conversation: person.conversation,
                kind: ScheduleKind::Reminder,
                when: "in 1 minute",
                text: "stretch your legs and drink some water",
                time_zone: None,
            })
            .await
            .unwrap();
    }

    /// Everyone's reminder, all due at once.
    async fn reminders(&self) -> (Figures, Split) {
        for person in &self.people {
            self.remind(person).await;
        }
        self.clock.advance(Duration::from_secs(61));
        self.sink.reset();
        let start = Instant::now();
        let split = self.drain().await;
        let elapsed = start.elapsed();
        let each = self.sink.since(start);
        assert_eq!(each.len(), self.people.len(), "every reminder delivered");
        let figures = Figures {
            messages: each.len(),
            elapsed,
            each,
        };
        (figures, split)
    }

    /// An alert for everyone, queued at once, then delivered.
    async fn alerts(&self, round: &str) -> (Figures, Split) {
        self.sink.reset();
        let start = Instant::now();
        futures::future::join_all(self.people.iter().enumerate().map(|(i, person)| {
            let key = format!("bench:{round}:{i}");
            async move {
                self.proactive
                    .alert(
                        person.user,
                        ProactiveKind::Alert,
                        &key,
                        "📧 New mail from the bank: your statement is ready",
                    )
                    .await
            }
        }))
        .await
        .into_iter()
        .for_each(|queued| assert!(queued.unwrap()));
        let enqueue = start.elapsed();
        let mut split = self.drain().await;
        split.enqueue = enqueue;
        let elapsed = start.elapsed();
        let each = self.sink.since(start);
        assert_eq!(each.len(), self.people.len(), "every alert delivered");
        let figures = Figures {
            messages: each.len(),
            elapsed,
            each,
        };
        (figures, split)
    }

    /// The outbox's own work for the same N rows: put in, claimed 20 at a
    /// time, marked sent; nothing delivered.
    async fn bookkeeping(&self, round: &str) -> (Figures, Split) {
        let store = self.engine.store();
        for (i, person) in self.people.iter().enumerate() {
            store
                .enqueue_proactive(&NewProactive {
                    key: format!("book:{round}:{i}"),
                    user: Some(person.user),
                    conversation: person.conversation,
                    kind: ProactiveKind::Alert,
                    body: "x".into(),
                    note: None,
                    due_at_ms: self.clock.now_ms(),
                })
                .await
                .unwrap();
        }
        let platforms = vec!["bench".to_owned()];
        let start = Instant::now();
        let mut messages = 0;
        let mut split = Split::default();
        loop {
            let t = Instant::now();
            let claimed = store
                .claim_proactive(self.clock.now_ms(), &platforms, 120_000, 20)
                .await
                .unwrap();
            split.claim += t.elapsed();
            if claimed.is_empty() {
                break;
            }
            messages += claimed.len();
            let now = self.clock.now_ms();
            let t = Instant::now();
            let keys: Vec<String> = claimed.iter().map(|r| r.key.clone()).collect();
            store.proactive_sent(&keys, now).await.unwrap();
            split.sent += t.elapsed();
        }
        let figures = Figures {
            messages,
            elapsed: start.elapsed(),
            each: Vec::new(),
        };
        (figures, split)
    }

    /// One person's reminders, each alone.
    async fn reminders_alone(&self, count: usize) -> Figures {
        let person = &self.people[0];
        let mut each = Vec::with_capacity(count);
        for _ in 0..count {
            self.remind(person).await;
            self.clock.advance(Duration::from_secs(61));
            self.sink.reset();
            let start = Instant::now();
            self.drain().await;
            let ends = self.sink.since(start);
            assert_eq!(ends.len(), 1);
            each.push(ends[0]);
        }
        alone(each)
    }

    /// One person's alerts, each alone (queued, then delivered).
    async fn alerts_alone(&self, count: usize) -> Figures {
        let person = &self.people[0];
        let mut each = Vec::with_capacity(count);
        for n in 0..count {
            self.sink.reset();
            let start = Instant::now();
            self.proactive
                .alert(
                    person.user,
                    ProactiveKind::Alert,
                    &format!("alone:{n}"),
                    "📧 New mail from the bank: your statement is ready",
                )
                .await
                .unwrap();
            self.drain().await;
            let ends = self.sink.since(start);
            assert_eq!(ends.len(), 1);
            each.push(ends[0]);
        }
        alone(each)
    }

    /// The platform calls the send queue made for one proactive message, as
    /// recorded since the call count `from`.
    fn calls_of_one(&self, from: usize) -> Vec<Outbound> {
        let calls = self.sink.inner.calls();
        let first = calls[from..]
            .iter()
            .find_map(Outbound::thought)
            .expect("a proactive message was delivered");
        calls[from..]
            .iter()
            .filter(|c| c.thought() == Some(first))
            .cloned()
            .collect()
    }
}

fn alone(mut each: Vec<Duration>) -> Figures {
    let elapsed = each.iter().sum();
    each.sort();
    Figures {
        messages: each.len(),
        elapsed,
        each,
    }
}

/// Baseline: `calls` (one message's platform calls) replayed for every
/// person at once, straight into a fresh sink of the same kind.
async fn adapter_only(mode: &DeliveryMode, people: &[Person], calls: &[Outbound]) -> Figures {
    let sink = TimedSink::new(mode);
    let start = Instant::now();
    futures::future::join_all(people.iter().map(|person| {
        let sink = Arc::clone(&sink);
        async move {
            let thought = ThoughtId::new();
            for call in calls {
                sink.deliver(&person.reference, with_thought(call, thought))
                    .await
                    .unwrap();
            }
        }
    }))
    .await;
    let elapsed = start.elapsed();
    let each = sink.since(start);
    Figures {
        messages: each.len(),
        elapsed,
        each,
    }
}

/// Baseline: the same calls for one person, one message at a time.
async fn adapter_alone(
    mode: &DeliveryMode,
    person: &Person,
    calls: &[Outbound],
    count: usize,
) -> Figures {
    let sink = TimedSink::new(mode);
    let mut each = Vec::with_capacity(count);
    for _ in 0..count {
        let thought = ThoughtId::new();
        let start = Instant::now();
        for call in calls {
            sink.deliver(&person.reference, with_thought(call, thought))
                .await
                .unwrap();
        }
        each.push(start.elapsed());
    }
    alone(each)
}

fn with_thought(call: &Outbound, thought: ThoughtId) -> Outbound {
    match call.clone() {
        Outbound::Send { text, .. } => Outbound::Send { thought, text },
        Outbound::Edit { message, text, .. } => Outbound::Edit {
            thought,
            message,
            text,
        },
        Outbound::Delta { text, .. } => Outbound::Delta { thought, text },
        Outbound::End { .. } => Outbound::End { thought },
        other => other,
    }
}

fn stored(person: &Person, key: &str, text: &str) -> NewMessage {
    NewMessage {
        id: MessageId::new(),
        conversation: person.conversation,
        session: person.session,
        thought: ThoughtId::new(),
        user: None,
        role: Role::Assistant,
        content: text.to_owned(),
        event_id: Some(EventId(key.to_owned())),
        status: MessageStatus::Complete,
        created_at_ms: clara_runtime::clock::now_ms(),
        usage: None,
        tool_runs: Vec::new(),
    }
}

/// Baseline: the same message stored for every person at once, one
/// `Store::append_messages` (one transaction) each.
async fn append_only(store: &Store, people: &[Person], round: &str, text: &str) -> Figures {
    let start = Instant::now();
    let each: Vec<Duration> = futures::future::join_all(people.iter().enumerate().map(|(i, p)| {
        let message = stored(p, &format!("base:{round}:{i}"), text);
        async move {
            store.append_messages(&[message]).await.unwrap();
            start.elapsed()
        }
    }))
    .await;
    let elapsed = start.elapsed();
    let mut each = each;
    each.sort();
    Figures {
        messages: people.len(),
        elapsed,
        each,
    }
}

/// Baseline: the same for one person, one message at a time.
async fn append_alone(
    store: &Store,
    person: &Person,
    round: &str,
    text: &str,
    count: usize,
) -> Figures {
    let mut each = Vec::with_capacity(count);
    for n in 0..count {
        let message = stored(person, &format!("alone:{round}:{n}"), text);
        let start = Instant::now();
        store.append_messages(&[message]).await.unwrap();
        each.push(start.elapsed());
    }
    alone(each)
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// Everything measured for one delivery mode.
struct Results {
    mode: &'static str,
    adapter: Figures,
    append: Figures,
    reminders: Figures,
    reminder_split: Split,
    alerts: Figures,
    alert_split: Split,
    bookkeeping: Figures,
    bookkeeping_split: Split,
    adapter_alone: Figures,
    append_alone: Figures,
    reminder_alone: Figures,
    alert_alone: Figures,
}

async fn measure(
    mode: DeliveryMode,
    name: &'static str,
    people: usize,
    count: usize,
    rounds: usize,
    history: usize,
) -> Results {
    let bench = bench_on(&mode, people, history).await;
    // A first round pages in the code paths and SQLite, and gives the
    // baseline the send queue's exact calls to replay.
    let from = bench.sink.reset();
    bench.reminders().await;
    let calls = bench.calls_of_one(from);
    let text = calls
        .iter()
        .find_map(|c| match c {
            Outbound::Delta { text, .. } | Outbound::Send { text, .. } => Some(text.clone()),
            _ => None,
        })
        .unwrap();
    bench.alerts("warm").await;

    // Baselines and Clara, in the same run, alternating round by round so
    // the machine's load falls on all alike; each path's median round counts.
    let (mut adapter, mut append, mut reminders, mut alerts, mut bookkeeping) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let round = round.to_string();
        adapter.push((adapter_only(&mode, &bench.people, &calls).await, ()));
        append.push((
            append_only(bench.engine.store(), &bench.people, &round, &text).await,
            (),
        ));
        reminders.push(bench.reminders().await);
        alerts.push(bench.alerts(&round).await);
        bookkeeping.push(bench.bookkeeping(&round).await);
    }
    let (adapter, ()) = median(adapter);
    let (append, ()) = median(append);
    let (reminders, reminder_split) = median(reminders);
    let (alerts, alert_split) = median(alerts);
    let (bookkeeping, bookkeeping_split) = median(bookkeeping);

    let adapter_alone = adapter_alone(&mode, &bench.people[0], &calls, count).await;
    let append_alone =
        append_alone(bench.engine.store(), &bench.people[0], "a", &text, count).await;
    let reminder_alone = bench.reminders_alone(count).await;
    let alert_alone = bench.alerts_alone(count).await;
    bench.engine.shutdown().await;
    Results {
        mode: name,
        adapter,
        append,
        reminders,
        reminder_split,
        alerts,
        alert_split,
        bookkeeping,
        bookkeeping_split,
        adapter_alone,
        append_alone,
        reminder_alone,
        alert_alone,
    }
}

fn report(r: &Results, people: usize, count: usize) {
    let floor = r.adapter.per_message() + r.append.per_message();
    let row = |name: &str, f: &Figures, ratio: bool| {
        let times = if f.each.is_empty() {
            "— | —".to_owned()
        } else {
            format!("{} | {}", ms(f.p(0.50)), ms(f.p(0.99)))
        };
        let ratio = if ratio {
            format!(
                "{:.1}×",
                f.per_message().as_secs_f64() / floor.as_secs_f64().max(1e-9)
            )
        } else {
            "—".to_owned()
        };
        println!(
            "| {name} | {} | {} | {:.0} | {times} | {ratio} |",
            ms(f.elapsed),
            us(f.per_message()),
            f.per_second(),
        );
    };
    println!("### {} sink: {people} people at once", r.mode);
    println!();
    println!("| path | total | per message | messages/s | p50 to End | p99 to End | × floor |");
    println!("|---|---|---|---|---|---|---|");
    row(
        "baseline: the send queue's calls straight to the sink",
        &r.adapter,
        false,
    );
    row(
        "baseline: Store::append_messages, one message each",
        &r.append,
        false,
    );
    println!(
        "| floor: adapter + store (sum of the two) | {} | {} | {:.0} | — | — | 1.0× |",
        ms(r.adapter.elapsed + r.append.elapsed),
        us(floor),
        1.0 / floor.as_secs_f64()
    );
    row(
        "Clara: reminders (fire_due + deliver_due until all delivered)",
        &r.reminders,
        true,
    );
    row(
        "Clara: alerts (Proactive::alert for each, then deliver_due)",
        &r.alerts,
        true,
    );
    row(
        "outbox bookkeeping alone (claim + mark sent, nothing delivered)",
        &r.bookkeeping,
        true,
    );
    println!();
    println!(
        "Where the time went — reminders: fire_due {}, deliver_due {}; alerts: alert() {}, deliver_due {} (fire_due {}).",
        ms(r.reminder_split.fire),
        ms(r.reminder_split.deliver),
        ms(r.alert_split.enqueue),
        ms(r.alert_split.deliver),
        ms(r.alert_split.fire),
    );
    println!(
        "Bookkeeping alone: claim_proactive (one transaction per 20) {}, proactive_sent (one statement per pass) {}.",
        ms(r.bookkeeping_split.claim),
        ms(r.bookkeeping_split.sent),
    );
    println!();
    println!(
        "### {} sink: one message at a time ({count} each, one person)",
        r.mode
    );
    println!();
    println!("| path | p50 | p99 | added p50 over floor | added p99 over floor |");
    println!("|---|---|---|---|---|");
    let floor50 = r.adapter_alone.p(0.5) + r.append_alone.p(0.5);
    let floor99 = r.adapter_alone.p(0.99) + r.append_alone.p(0.99);
    let alone_row = |name: &str, f: &Figures, added: bool| {
        let added = if added {
            format!(
                "{} | {}",
                ms(f.p(0.5).saturating_sub(floor50)),
                ms(f.p(0.99).saturating_sub(floor99))
            )
        } else {
            "— | —".to_owned()
        };
        println!(
            "| {name} | {} | {} | {added} |",
            ms(f.p(0.5)),
            ms(f.p(0.99))
        );
    };
    alone_row(
        "baseline: the send queue's calls straight to the sink",
        &r.adapter_alone,
        false,
    );
    alone_row("baseline: Store::append_messages", &r.append_alone, false);
    alone_row(
        "Clara: a reminder (fire_due + deliver_due)",
        &r.reminder_alone,
        true,
    );
    alone_row(
        "Clara: an alert (alert + deliver_due)",
        &r.alert_alone,
        true,
    );
    println!();
}

fn main() {
    // `cargo test --benches` runs this without `--bench`: keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let people = env_or("CLARA_BENCH_PEOPLE", if quick { 10 } else { 200 });
    let count = env_or("CLARA_BENCH_ALONE", if quick { 3 } else { 100 });
    let rounds = env_or("CLARA_BENCH_ROUNDS", if quick { 1 } else { 3 });
    let history = env_or("CLARA_BENCH_HISTORY", if quick { 100 } else { 100_000 });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let wall = Instant::now();
        let streaming = measure(DeliveryMode::Stream, "streaming", people, count, rounds, history).await;
        let edits = measure(
            DeliveryMode::Edits {
                cooldown: Duration::from_secs(1),
            },
            "edits",
            people,
            count,
            rounds,
            history,
        )
        .await;
        println!("Proactive bench: memory on, real SQLite file holding {history} older messages, recording sink, tokio with 2 worker threads.");
        println!("Times to End are from the start of the batch (or of the message, one at a time) to its End at the sink.");
        println!();
        println!("{people} people at once: the median of {rounds} rounds (by total time).");
        println!();
        report(&streaming, people, count);
        report(&edits, people, count);
        println!("(bench ran {:.1} s)", wall.elapsed().as_secs_f64());
    });
}
