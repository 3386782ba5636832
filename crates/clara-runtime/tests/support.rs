//! Shared test fixtures: an engine on a real SQLite file, talking over real HTTP to
//! the fake OpenAI server, delivering into a sink that records every call.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use async_trait::async_trait;
use clara_core::chunker::ChunkerConfig;
use clara_core::pacing::{Delivery, DeliveryMode};
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound, Outbound, ThoughtId};
use clara_llm::{OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy};
use clara_runtime::{Engine, EngineConfig, OutboundSink, SinkError};
use clara_store::Store;
use clara_testkit::fake_openai::FakeOpenAi;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub const WAIT: Duration = Duration::from_secs(10);

/// Records every platform call; `Send` returns ids "m1", "m2", ….
pub struct RecordingSink {
    pub delivery: Delivery,
    pub calls: Mutex<Vec<Outbound>>,
    changed: Notify,
    next_id: AtomicU64,
}

impl RecordingSink {
    pub fn new(mode: DeliveryMode, max_chars: usize) -> Arc<Self> {
        Arc::new(Self {
            delivery: Delivery { mode, max_chars },
            calls: Mutex::new(Vec::new()),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
        })
    }

    pub fn streaming() -> Arc<Self> {
        Self::new(DeliveryMode::Stream, usize::MAX)
    }

    pub fn calls(&self) -> Vec<Outbound> {
        self.calls.lock().unwrap().clone()
    }

    /// Waits until the recorded calls satisfy `pred`.
    pub async fn wait_until(
        &self,
        what: &str,
        pred: impl Fn(&[Outbound]) -> bool,
    ) -> Vec<Outbound> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            {
                let calls = self.calls.lock().unwrap();
                if pred(&calls) {
                    return calls.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting for {what}; calls so far: {:#?}",
                    self.calls()
                );
            }
        }
    }

    /// The text streamed for `thought` (deltas joined).
    pub fn streamed(&self, thought: ThoughtId) -> String {
        self.calls()
            .iter()
            .filter_map(|c| match c {
                Outbound::Delta { thought: t, text } if *t == thought => Some(text.as_str()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .concat()
    }
}

#[async_trait]
impl OutboundSink for RecordingSink {
    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    async fn deliver(
        &self,
        _c: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let id = matches!(outbound, Outbound::Send { .. })
            .then(|| format!("m{}", self.next_id.fetch_add(1, Ordering::SeqCst)));
        self.calls.lock().unwrap().push(outbound);
        self.changed.notify_waiters();
        Ok(id)
    }
}

pub fn thought_of(call: &Outbound) -> Option<ThoughtId> {
    match call {
        Outbound::Send { thought, .. }
        | Outbound::Edit { thought, .. }
        | Outbound::Delta { thought, .. }
        | Outbound::End { thought }
        | Outbound::Cancelled { thought }
        | Outbound::Error { thought, .. }
        | Outbound::ToolStarted { thought, .. }
        | Outbound::ToolFinished { thought, .. } => Some(*thought),
        Outbound::Typing => None,
    }
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
        chunker: ChunkerConfig {
            quiet: Duration::from_millis(150),
            quiet_when_complete: Duration::from_millis(100),
            quiet_when_continuing: Duration::from_millis(200),
            typing_grace: Duration::from_millis(300),
            max_wait: Duration::from_secs(2),
            max_parts: 20,
        },
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
        replying_to: Vec::new(),
    }
}
