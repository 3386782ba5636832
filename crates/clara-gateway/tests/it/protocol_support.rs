//! Shared fixtures for the gateway protocol tests: a real gateway on
//! 127.0.0.1, in front of either a real engine (SQLite file, the fake OpenAI
//! server over HTTP) or a host that records what reaches it; an adapter-side
//! sink that records every platform call; and a raw WebSocket that speaks the
//! JSON by hand, as an adapter in another language would.
#![allow(dead_code)]

use async_trait::async_trait;
use clara_core::pacing::DeliveryMode;
use clara_core::port::{Accepted, Assistant, IngressError, OutboundSink};
use clara_core::{Author, ChannelKind, ConversationRef, EventId, Inbound};
use clara_gateway::server::{self, AdapterHost, ServerConfig};
use clara_llm::{OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy};
use clara_runtime::{Engine, EngineConfig};
use clara_store::Store;
use clara_testkit::fake_openai::FakeOpenAi;
use futures::{SinkExt, StreamExt};
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

/// A hang guard, never a timing assertion.
pub const WAIT: Duration = Duration::from_secs(15);

pub const SECRET: &str = "correct horse battery staple";

// ---------------------------------------------------------------- gateway

/// A gateway serving on 127.0.0.1.
pub struct Gateway {
    pub addr: SocketAddr,
    pub stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Gateway {
    pub async fn start(host: Arc<dyn AdapterHost>, config: ServerConfig) -> Self {
        Self::start_on(0, host, config).await
    }

    pub async fn start_on(port: u16, host: Arc<dyn AdapterHost>, config: ServerConfig) -> Self {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let app = server::router(host, config, stop.clone());
        let shutdown = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown.cancelled_owned())
                .await
                .unwrap();
        });
        Self { addr, stop, task }
    }

    pub fn url(&self) -> String {
        format!("ws://{}/gateway", self.addr)
    }

    /// Stops serving and closes every connection.
    pub async fn shutdown(self) {
        self.stop.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("the gateway stops")
            .unwrap();
    }
}

/// Short timeouts so the tests run fast; a secret unless told otherwise.
pub fn test_config() -> ServerConfig {
    ServerConfig {
        secret: Some(clara_protocol::GatewaySecret::new(SECRET)),
        handshake_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

// ---------------------------------------------------------------- engine

/// A config with a short quiet period, so replies come quickly.
pub fn fast_engine_config() -> EngineConfig {
    EngineConfig {
        chunker: clara_core::testing::fast_chunker(),
        ..EngineConfig::default()
    }
}

/// A real engine on a SQLite file, answering through the fake OpenAI server.
pub struct RealEngine {
    pub engine: Engine,
    pub fake: FakeOpenAi,
    pub dir: tempfile::TempDir,
}

impl RealEngine {
    pub async fn start() -> Self {
        let fake = FakeOpenAi::start().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
        let mut llm = OpenAiCompatibleConfig::new(fake.base_url(), "fake-model");
        llm.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        };
        let provider = Arc::new(OpenAiCompatible::new(llm).unwrap());
        let engine = Engine::new(fast_engine_config(), store, provider);
        Self { engine, fake, dir }
    }

    pub fn host(&self) -> Arc<dyn AdapterHost> {
        Arc::new(self.engine.clone())
    }

    pub async fn settle(&self, conversation: &ConversationRef) {
        tokio::time::timeout(WAIT, self.engine.wait_idle(conversation))
            .await
            .expect("the conversation settles");
    }
}

// ---------------------------------------------------------------- recording host

/// What reached a [`RecordingHost`].
#[derive(Clone, Debug, PartialEq)]
pub enum HostEvent {
    Submit(Inbound),
    Typing(ConversationRef, Author),
    Stop(ConversationRef, Author),
    NewSession(ConversationRef, Author),
}

/// Clara as a recorder: takes every message (refusing empty ones, as the
/// engine does) and keeps the sinks platforms attach.
#[derive(Default)]
pub struct RecordingHost {
    pub events: Mutex<Vec<HostEvent>>,
    sinks: Mutex<HashMap<String, Arc<dyn OutboundSink>>>,
    changed: Notify,
}

impl RecordingHost {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn record(&self, event: HostEvent) {
        self.events.lock().push(event);
        self.changed.notify_waiters();
    }

    pub fn events(&self) -> Vec<HostEvent> {
        self.events.lock().clone()
    }

    pub async fn wait_events(&self, n: usize) -> Vec<HostEvent> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let events = self.events();
            if events.len() >= n {
                return events;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {n} host events; got {events:#?}");
            }
        }
    }

    /// The sink the gateway attached for `platform`.
    pub async fn sink(&self, platform: &str) -> Arc<dyn OutboundSink> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            if let Some(sink) = self.sinks.lock().get(platform).cloned() {
                return sink;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("no sink was attached for {platform}");
            }
        }
    }
}

#[async_trait]
impl Assistant for RecordingHost {
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        if inbound.text.trim().is_empty() {
            return Err(IngressError::Empty);
        }
        self.record(HostEvent::Submit(inbound));
        Ok(Accepted::Queued)
    }

    async fn typing(&self, conversation: &ConversationRef, author: &Author) {
        self.record(HostEvent::Typing(conversation.clone(), author.clone()));
    }

    async fn stop(&self, conversation: &ConversationRef, author: &Author) {
        self.record(HostEvent::Stop(conversation.clone(), author.clone()));
    }

    async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError> {
        self.record(HostEvent::NewSession(conversation.clone(), author.clone()));
        Ok(())
    }
}

impl AdapterHost for RecordingHost {
    fn attach(&self, platform: &str, sink: Arc<dyn OutboundSink>) {
        self.sinks.lock().insert(platform.to_owned(), sink);
        self.changed.notify_waiters();
    }
}

// ---------------------------------------------------------------- adapter sink

/// The adapter's own platform: the shared recording sink of `clara-core`.
pub use clara_core::testing::{RecordingSink, is_final, streamed};

/// A sink that streams, up to 100 000 characters a message.
pub fn streaming_sink() -> Arc<RecordingSink> {
    RecordingSink::new(DeliveryMode::Stream, 100_000)
}

/// A sink that edits one message, at most once per `cooldown_ms`.
pub fn editing_sink(cooldown_ms: u64) -> Arc<RecordingSink> {
    RecordingSink::new(
        DeliveryMode::Edits {
            cooldown: Duration::from_millis(cooldown_ms),
        },
        2000,
    )
}

// ---------------------------------------------------------------- conversation

pub const PLATFORM: &str = "test";

pub fn conversation() -> ConversationRef {
    ConversationRef {
        platform: PLATFORM.into(),
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

// ---------------------------------------------------------------- raw WebSocket

/// A WebSocket that speaks the protocol's JSON by hand.
pub struct Raw {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

/// What a raw socket read.
#[derive(Debug)]
pub enum Read {
    Frame(Value),
    Closed(Option<u16>),
}

impl Raw {
    pub async fn connect(url: &str) -> Self {
        let (socket, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connects in time")
            .expect("connects");
        Self { socket }
    }

    pub async fn send(&mut self, text: &str) {
        self.socket
            .send(Message::text(text.to_owned()))
            .await
            .unwrap();
    }

    pub async fn send_json(&mut self, value: &Value) {
        self.send(&value.to_string()).await;
    }

    pub async fn send_binary(&mut self, bytes: Vec<u8>) {
        self.socket.send(Message::binary(bytes)).await.unwrap();
    }

    /// The next frame or close, skipping WebSocket pings.
    pub async fn read(&mut self) -> Read {
        loop {
            let next = tokio::time::timeout(WAIT, self.socket.next())
                .await
                .expect("the gateway says something in time");
            match next {
                Some(Ok(Message::Text(text))) => {
                    return Read::Frame(serde_json::from_str(text.as_str()).unwrap());
                }
                Some(Ok(Message::Close(frame))) => {
                    return Read::Closed(frame.map(|f| u16::from(f.code)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Read::Closed(None),
            }
        }
    }

    /// The next frame; panics on a close.
    pub async fn frame(&mut self) -> Value {
        match self.read().await {
            Read::Frame(v) => v,
            Read::Closed(code) => panic!("the gateway closed the connection ({code:?})"),
        }
    }

    /// The next frame that is not a `ping`.
    pub async fn frame_skipping_pings(&mut self) -> Value {
        loop {
            let frame = self.frame().await;
            if frame["type"] != "ping" {
                return frame;
            }
        }
    }

    /// Reads until the close; returns its code.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Read::Closed(code) = self.read().await {
                return code;
            }
        }
    }

    /// Challenge → hello (with a proof of `secret`) → welcome.
    pub async fn handshake(&mut self, secret: &str, capabilities: Value) -> Value {
        let challenge = self.frame().await;
        assert_eq!(challenge["type"], "challenge", "{challenge}");
        let nonce = challenge["nonce"].as_str().unwrap();
        let proof = clara_protocol::GatewaySecret::new(secret).proof(nonce);
        self.send_json(&serde_json::json!({
            "v": 1, "type": "hello", "platform": PLATFORM, "proof": proof,
            "capabilities": capabilities,
        }))
        .await;
        let welcome = self.frame().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        welcome
    }

    /// Keeps answering the gateway's pings in the background; every other
    /// frame comes out of the returned channel.
    pub fn answer_pings(mut self) -> tokio::sync::mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(message)) = self.socket.next().await {
                let Message::Text(text) = message else {
                    continue;
                };
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame["type"] == "ping" {
                    let pong = serde_json::json!({"v": 1, "type": "pong", "nonce": frame["nonce"]});
                    if self
                        .socket
                        .send(Message::text(pong.to_string()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                } else if tx.send(frame).is_err() {
                    return;
                }
            }
        });
        rx
    }

    /// Stops reading (a stuck adapter): hands the socket back to drop later.
    pub fn into_inner(self) -> WebSocketStream<MaybeTlsStream<TcpStream>> {
        self.socket
    }
}

pub fn streaming_caps() -> Value {
    serde_json::json!({ "max_message_chars": 100000, "streaming": true })
}
