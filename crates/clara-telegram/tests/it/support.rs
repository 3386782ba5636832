//! Shared rigs for the Telegram adapter's tests: the fake Bot API
//! (`clara_testkit::fake_telegram`), and behind the adapter either a real engine
//! (SQLite file, the fake OpenAI server as its model) or an assistant that only
//! records what it is handed.

use async_trait::async_trait;
use clara_core::port::{Accepted, Assistant, IngressError, OutboundSink};
use clara_core::{Author, ConversationRef, Inbound, Outbound, ThoughtId};
use clara_llm::{OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy};
use clara_runtime::{Engine, EngineConfig, TierModels};
use clara_store::Store;
use clara_telegram::{Backoff, Telegram, TelegramConfig, TelegramDelivery, TelegramError};
use clara_testkit::fake_openai::FakeOpenAi;
use clara_testkit::fake_telegram::{FakeChat, FakeTelegram, FakeUser};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(20);

pub fn ann() -> FakeUser {
    FakeUser {
        last_name: Some("Lee".into()),
        username: Some("ann_lee".into()),
        ..FakeUser::new(4242, "Ann")
    }
}

pub fn bob() -> FakeUser {
    FakeUser::new(5151, "Bob")
}

pub fn dm(user: &FakeUser) -> FakeChat {
    FakeChat::private(user)
}

/// Adapter settings for tests: short long-polls and backoff, so a test sees
/// several polls and retries in a few seconds.
pub fn config(tg: &FakeTelegram, delivery: TelegramDelivery) -> TelegramConfig {
    TelegramConfig {
        api_url: tg.api_url(),
        delivery,
        poll_timeout: Duration::from_secs(2),
        call_timeout: Duration::from_secs(5),
        backoff: Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_millis(800),
        },
        group_write_interval: Duration::from_secs(1),
        ..TelegramConfig::new(tg.token())
    }
}

pub fn edits() -> TelegramDelivery {
    TelegramDelivery::Edits {
        cooldown: Duration::from_millis(300),
    }
}

/// A running adapter and its stop switch.
pub struct Running {
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), TelegramError>>,
}

impl Running {
    /// Stops the adapter and returns how it ended.
    pub async fn stop(self) -> Result<(), TelegramError> {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the adapter stops")
            .expect("the adapter task does not panic")
    }
}

/// A short engine config: a burst is answered 150 ms after its last message.
pub fn fast_engine_config() -> EngineConfig {
    EngineConfig {
        chunker: clara_core::testing::fast_chunker(),
        tiers: TierModels {
            high: Some("fake-model-high".into()),
            mid: None,
            low: Some("fake-model-low".into()),
        },
        ..EngineConfig::default()
    }
}

/// An engine on a SQLite file in `dir`, answering with the fake model.
pub async fn engine_on(dir: &std::path::Path, llm: &FakeOpenAi) -> Engine {
    let store = Store::open(&dir.join("clara.db")).await.unwrap();
    let mut config = OpenAiCompatibleConfig::new(llm.base_url(), "fake-model");
    config.retry = RetryPolicy {
        max_attempts: 2,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
    };
    let provider = Arc::new(OpenAiCompatible::new(config).unwrap());
    Engine::new(fast_engine_config(), store, provider)
}

/// The fake Bot API, the fake model, a real engine and the adapter between them.
pub struct Rig {
    pub tg: FakeTelegram,
    pub llm: FakeOpenAi,
    pub engine: Engine,
    pub dir: tempfile::TempDir,
    pub adapter: Option<Running>,
}

impl Rig {
    pub async fn start(delivery: TelegramDelivery) -> Self {
        let tg = FakeTelegram::start().await;
        let llm = FakeOpenAi::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_on(dir.path(), &llm).await;
        let mut rig = Self {
            tg,
            llm,
            engine,
            dir,
            adapter: None,
        };
        rig.start_adapter(delivery);
        rig
    }

    /// Starts (again) an adapter in front of the engine.
    pub fn start_adapter(&mut self, delivery: TelegramDelivery) {
        let adapter = Telegram::new(config(&self.tg, delivery)).unwrap();
        self.engine.attach("telegram", adapter.sink());
        let stop = CancellationToken::new();
        let assistant: Arc<dyn Assistant> = Arc::new(self.engine.clone());
        let task = tokio::spawn(adapter.run(assistant, stop.clone()));
        self.adapter = Some(Running { stop, task });
    }

    /// Stops the adapter (it returns cleanly).
    pub async fn stop_adapter(&mut self) {
        if let Some(running) = self.adapter.take() {
            running.stop().await.unwrap();
        }
    }

    /// Waits until the conversation has nothing pending or in flight.
    pub async fn settle(&self, chat: &FakeChat) {
        tokio::time::timeout(WAIT, self.engine.wait_idle(&conversation_of(chat)))
            .await
            .expect("the conversation settles");
    }
}

/// The final text of each message the bot sent in `chat`.
pub fn bot_texts(tg: &FakeTelegram, chat: &FakeChat) -> Vec<String> {
    tg.bot_messages(chat.id)
        .into_iter()
        .map(|m| m.text)
        .collect()
}

/// An assistant that records what it is handed, and refuses when told to.
#[derive(Default)]
pub struct RecordingAssistant {
    pub inbounds: Mutex<Vec<Inbound>>,
    pub new_sessions: Mutex<Vec<(ConversationRef, Author)>>,
    pub stops: Mutex<Vec<(ConversationRef, Author)>>,
    /// Answers for the next submits, in order; `Ok(Queued)` when empty.
    pub refuse: Mutex<VecDeque<IngressError>>,
    changed: Notify,
}

impl RecordingAssistant {
    pub fn inbounds(&self) -> Vec<Inbound> {
        self.inbounds.lock().unwrap().clone()
    }

    /// Waits until `n` messages were handed over.
    pub async fn wait_for_inbounds(&self, n: usize) -> Vec<Inbound> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            let got = self.inbounds();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                panic!("expected {n} inbound message(s), got {got:#?}");
            }
        }
    }
}

#[async_trait]
impl Assistant for RecordingAssistant {
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        let refused = self.refuse.lock().unwrap().pop_front();
        if let Some(refused) = refused {
            self.changed.notify_waiters();
            return Err(refused);
        }
        self.inbounds.lock().unwrap().push(inbound);
        self.changed.notify_waiters();
        Ok(Accepted::Queued)
    }

    async fn typing(&self, _conversation: &ConversationRef, _author: &Author) {}

    async fn stop(&self, conversation: &ConversationRef, author: &Author) {
        self.stops
            .lock()
            .unwrap()
            .push((conversation.clone(), author.clone()));
        self.changed.notify_waiters();
    }

    async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError> {
        self.new_sessions
            .lock()
            .unwrap()
            .push((conversation.clone(), author.clone()));
        self.changed.notify_waiters();
        Ok(())
    }
}

/// The adapter in front of a [`RecordingAssistant`].
pub struct Recorded {
    pub tg: FakeTelegram,
    pub assistant: Arc<RecordingAssistant>,
    /// The adapter's sink, to make Clara say something.
    pub sink: Arc<dyn OutboundSink>,
    pub adapter: Running,
}

impl Recorded {
    pub async fn start() -> Self {
        let tg = FakeTelegram::start().await;
        let assistant = Arc::new(RecordingAssistant::default());
        let (sink, adapter) = Self::run(&tg, Arc::clone(&assistant));
        Self {
            tg,
            assistant,
            sink,
            adapter,
        }
    }

    /// The adapter with settings changed by `change`.
    pub async fn start_with(change: impl FnOnce(&mut TelegramConfig)) -> Self {
        let tg = FakeTelegram::start().await;
        let assistant = Arc::new(RecordingAssistant::default());
        let mut settings = config(&tg, edits());
        change(&mut settings);
        let (sink, adapter) = Self::run_with(settings, Arc::clone(&assistant));
        Self {
            tg,
            assistant,
            sink,
            adapter,
        }
    }

    pub fn run(
        tg: &FakeTelegram,
        assistant: Arc<RecordingAssistant>,
    ) -> (Arc<dyn OutboundSink>, Running) {
        Self::run_with(config(tg, edits()), assistant)
    }

    fn run_with(
        settings: TelegramConfig,
        assistant: Arc<RecordingAssistant>,
    ) -> (Arc<dyn OutboundSink>, Running) {
        let adapter = Telegram::new(settings).unwrap();
        let sink = adapter.sink();
        let stop = CancellationToken::new();
        let task = tokio::spawn(adapter.run(assistant, stop.clone()));
        (sink, Running { stop, task })
    }

    /// Clara says `text` in `chat` (through the adapter's sink); returns its message id.
    pub async fn clara_says(&self, chat: &FakeChat, text: &str) -> i64 {
        let conversation = conversation_of(chat);
        let id = self
            .sink
            .deliver(
                &conversation,
                Outbound::Send {
                    thought: ThoughtId::new(),
                    text: text.into(),
                },
            )
            .await
            .unwrap()
            .unwrap();
        id.parse().unwrap()
    }

    /// Waits until Telegram has every update confirmed (so each was handled).
    pub async fn all_handled(&self) {
        self.tg
            .wait_for("every update confirmed", |tg| tg.unconfirmed_updates() == 0)
            .await;
    }
}

/// The conversation of a fake chat.
pub fn conversation_of(chat: &FakeChat) -> ConversationRef {
    ConversationRef {
        platform: "telegram".into(),
        channel: chat.id.to_string(),
        kind: if chat.kind == "private" {
            clara_core::ChannelKind::Direct
        } else {
            clara_core::ChannelKind::Group
        },
    }
}
