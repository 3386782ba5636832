//! Shared fixtures for the Discord adapter's tests: the adapter running against
//! the fake Discord, with either a recording assistant (what the adapter hands
//! over) or a real engine answering through the fake OpenAI server.

use clara_core::chunker::ChunkerConfig;
use clara_core::port::{Assistant, OutboundSink};
use clara_discord::{Discord, DiscordConfig, DiscordError};
use clara_llm::{OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy};
use clara_runtime::{Engine, EngineConfig};
use clara_store::Store;
use clara_testkit::fake_discord::{BOT_ID, FakeDiscord, FakeUser};
use clara_testkit::fake_openai::FakeOpenAi;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const WAIT: Duration = Duration::from_secs(20);

pub const DM: u64 = 2_000;
pub const GUILD: u64 = 3_000;
pub const GENERAL: u64 = 3_001;
pub const OFFTOPIC: u64 = 3_002;

pub fn ann() -> FakeUser {
    FakeUser::new(1_001, "Ann")
}

pub fn bob() -> FakeUser {
    FakeUser::new(1_002, "Bob")
}

/// Clara's own account, for messages of hers stored as history.
pub fn clara() -> FakeUser {
    FakeUser {
        id: BOT_ID,
        username: "clara".into(),
        global_name: Some("Clara".into()),
        bot: true,
    }
}

pub use clara_core::testing::{AssistantCall as Call, RecordingAssistant};

/// Settings pointing the adapter at `fake`.
pub fn config_for(fake: &FakeDiscord) -> DiscordConfig {
    let mut config = DiscordConfig::new(fake.token());
    config.api_url = fake.api_url();
    config.gateway_url = fake.gateway_url();
    config
}

/// A running adapter.
pub struct Running {
    pub sink: Arc<dyn OutboundSink>,
    pub stop: CancellationToken,
    pub task: JoinHandle<Result<(), DiscordError>>,
}

impl Running {
    /// Stops the adapter and returns how `run` ended.
    pub async fn shut_down(self) -> Result<(), DiscordError> {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the adapter stops")
            .expect("the adapter task does not panic")
    }
}

/// Starts the adapter with `config`, handing messages to `assistant`.
pub fn start(config: DiscordConfig, assistant: Arc<dyn Assistant>) -> Running {
    let discord = Discord::new(config).expect("valid settings");
    let sink = discord.sink();
    let stop = CancellationToken::new();
    let task = tokio::spawn(discord.run(assistant, stop.clone()));
    Running { sink, stop, task }
}

/// The adapter against `fake` with a recording assistant, connected.
pub async fn recording(
    fake: &FakeDiscord,
    config: DiscordConfig,
) -> (Running, Arc<RecordingAssistant>) {
    let assistant = RecordingAssistant::new();
    let running = start(config, assistant.clone());
    fake.wait_live().await;
    (running, assistant)
}

/// Quick chunker timings, so tests run fast.
pub fn fast_engine_config() -> EngineConfig {
    EngineConfig {
        chunker: ChunkerConfig {
            quiet: Duration::from_millis(300),
            quiet_when_complete: Duration::from_millis(200),
            quiet_when_continuing: Duration::from_millis(400),
            typing_grace: Duration::from_millis(400),
            max_wait: Duration::from_secs(3),
            max_parts: 20,
        },
        ..EngineConfig::default()
    }
}

/// A real engine (SQLite in a temp dir, the fake model) behind the adapter.
pub struct EngineHarness {
    pub engine: Engine,
    pub llm: FakeOpenAi,
    pub running: Running,
    pub dir: tempfile::TempDir,
}

impl EngineHarness {
    pub async fn start(fake: &FakeDiscord, config: DiscordConfig) -> Self {
        let llm = FakeOpenAi::start().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
        let mut llm_config = OpenAiCompatibleConfig::new(llm.base_url(), "fake-model");
        llm_config.retry = RetryPolicy {
            max_attempts: 2,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        };
        let provider = Arc::new(OpenAiCompatible::new(llm_config).unwrap());
        let engine = Engine::new(fast_engine_config(), store, provider);
        let discord = Discord::new(config).expect("valid settings");
        let sink = discord.sink();
        engine.attach("discord", sink.clone());
        let stop = CancellationToken::new();
        let task = tokio::spawn(discord.run(Arc::new(engine.clone()), stop.clone()));
        fake.wait_live().await;
        Self {
            engine,
            llm,
            running: Running { sink, stop, task },
            dir,
        }
    }
}

/// Whether every ``` fence in `text` is closed.
pub fn fences_balanced(text: &str) -> bool {
    text.lines()
        .filter(|l| l.trim_start().starts_with("```"))
        .count()
        % 2
        == 0
}
