//! Shared test fixtures: an engine on a real SQLite file, talking over real HTTP to
//! the fake OpenAI server, delivering into a sink that records every call.

use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound, Outbound, ThoughtId};
use clara_llm::{OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy};
use clara_runtime::{Engine, EngineConfig};
use clara_store::Store;
use clara_testkit::fake_openai::FakeOpenAi;
use std::sync::Arc;
use std::time::Duration;

/// The shared recording sink (`clara-core`'s `testing` feature) and how long
/// its `wait_until` waits.
pub use clara_core::testing::{RecordingSink, WAIT};

pub fn thought_of(call: &Outbound) -> Option<ThoughtId> {
    call.thought()
}

pub fn ends(calls: &[Outbound]) -> usize {
    calls
        .iter()
        .filter(|c| matches!(c, Outbound::End { .. }))
        .count()
}

pub fn finals(calls: &[Outbound]) -> usize {
    calls
        .iter()
        .filter(|c| {
            matches!(
                c,
                Outbound::End { .. } | Outbound::Cancelled { .. } | Outbound::Error { .. }
            )
        })
        .count()
}

/// A config with a short quiet period, so tests run fast.
pub fn fast_config() -> EngineConfig {
    EngineConfig {
        chunker: clara_core::testing::fast_chunker(),
        ..EngineConfig::default()
    }
}

pub struct Harness {
    pub engine: Engine,
    pub sink: Arc<RecordingSink>,
    pub fake: FakeOpenAi,
    pub dir: tempfile::TempDir,
}

impl Harness {
    pub async fn start(config: EngineConfig) -> Self {
        Self::with_sink(config, RecordingSink::streaming()).await
    }

    pub async fn with_sink(config: EngineConfig, sink: Arc<RecordingSink>) -> Self {
        let fake = FakeOpenAi::start().await;
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_on(&dir, &fake, config).await;
        engine.attach("test", sink.clone());
        Self {
            engine,
            sink,
            fake,
            dir,
        }
    }

    pub async fn say(
        &self,
        event: &str,
        text: &str,
    ) -> Result<clara_runtime::Accepted, clara_runtime::IngressError> {
        self.engine.submit(inbound(event, text)).await
    }

    pub async fn settle(&self) {
        tokio::time::timeout(WAIT, self.engine.wait_idle(&conversation()))
            .await
            .expect("conversation settles");
    }
}

pub async fn engine_on(dir: &tempfile::TempDir, fake: &FakeOpenAi, config: EngineConfig) -> Engine {
    let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
    let mut llm = OpenAiCompatibleConfig::new(fake.base_url(), "fake-model");
    llm.retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    };
    let provider = Arc::new(OpenAiCompatible::new(llm).unwrap());
    Engine::new(config, store, provider)
}

pub fn conversation() -> ConversationRef {
    ConversationRef {
        platform: "test".into(),
        channel: "dm-ann".into(),
        kind: ChannelKind::Direct,
    }
}

pub fn ann() -> Author {
    Author {
        platform_user_id: "u-ann".into(),
        display_name: "Ann".into(),
    }
}

pub fn inbound(event: &str, text: &str) -> Inbound {
    Inbound {
        event_id: EventId::from(event),
        conversation: conversation(),
        author: ann(),
        text: text.into(),
        sent_at_ms: 0,
        tier: None,
        images: Vec::new(),
        files: Vec::new(),
        replying_to: Vec::new(),
    }
}

/// A fresh schema of its own on the PostgreSQL test server
/// (`CLARA_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/test`),
/// for tests of several processes sharing one database. Fails (never skips)
/// when the server is missing.
pub struct PgSchema {
    pub url: String,
}

pub async fn postgres_schema() -> PgSchema {
    use sqlx::Connection;
    let server = std::env::var("CLARA_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {server} ({e}); start it with scripts/services.sh"
            )
        });
    let schema = format!("clara_rt_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap();
    admin.close().await.unwrap();
    let sep = if server.contains('?') { '&' } else { '?' };
    PgSchema {
        url: format!("{server}{sep}options=-c%20search_path%3D{schema}"),
    }
}
