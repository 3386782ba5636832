//! A real Clara HTTP face for tests: the engine on a SQLite file, answering
//! through the fake OpenAI server over real HTTP, with Rook memory (in-process
//! bag-of-words embeddings), the built-in clock tool, and the router served on a
//! real socket.
#![allow(dead_code)]

use async_trait::async_trait;
use clara_core::port::OutboundSink;
use clara_core::{ChannelKind, MemoryKind, Scope};
use clara_gateway::http::{HttpConfig, HttpDeps, ToolServers, router_and_sink};
use clara_llm::embed::{EmbedError, Embedder, EmbeddingModel};
use clara_llm::{OpenAiCompatible, OpenAiCompatibleConfig, RetryPolicy};
use clara_memory::{Origin, Rook, RookConfig};
use clara_runtime::{Engine, EngineConfig, TierModels};
use clara_store::{MemoryRecord, Store};
use clara_testkit::FakeOpenAi;
use clara_tools::ToolRegistry;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A hang guard for waits in tests (never a timing assertion).
pub const WAIT: Duration = Duration::from_secs(20);

/// The fake OpenAI server's bag-of-words embedding, in process.
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

/// A config with a short quiet period, so tests run fast.
pub fn fast_config() -> EngineConfig {
    EngineConfig {
        chunker: clara_core::testing::fast_chunker(),
        tiers: TierModels {
            high: Some("fake-high".into()),
            mid: None,
            low: Some("fake-low".into()),
        },
        ..EngineConfig::default()
    }
}

pub struct Server {
    /// `http://127.0.0.1:PORT`, whatever address it listens on.
    pub url: String,
    pub engine: Engine,
    pub store: Store,
    pub rook: Rook,
    pub fake: FakeOpenAi,
    /// The `web` platform's sink the engine delivers through: a test delivers
    /// to it directly what the engine would.
    pub web: Arc<dyn OutboundSink>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Server {
    /// Serves on 127.0.0.1 with `config`.
    pub async fn start(config: HttpConfig) -> Server {
        Self::start_on("127.0.0.1:0", config).await
    }

    /// Serves on `addr` (e.g. `0.0.0.0:0` to be off loopback); reached through
    /// 127.0.0.1 either way.
    pub async fn start_on(addr: &str, config: HttpConfig) -> Server {
        Self::start_with(addr, config, axum::Router::new()).await
    }

    /// Serves on `addr` with `config`, and `extra` routes (webhooks) merged in
    /// beside the HTTP face, as the binary does.
    pub async fn start_with(addr: &str, config: HttpConfig, extra: axum::Router) -> Server {
        Self::start_inner(addr, config, extra, true, None).await
    }

    /// Serves on 127.0.0.1 with `config`, the page's Tools panel showing
    /// `servers`.
    pub async fn start_with_tool_servers(
        config: HttpConfig,
        servers: Arc<dyn ToolServers>,
    ) -> Server {
        Self::start_inner(
            "127.0.0.1:0",
            config,
            axum::Router::new(),
            true,
            Some(servers),
        )
        .await
    }

    /// Serves on 127.0.0.1 with `config`, the HTTP face given no Rook (the
    /// engine keeps its own): what the face shows comes from its own state.
    pub async fn start_without_memory(config: HttpConfig) -> Server {
        Self::start_inner("127.0.0.1:0", config, axum::Router::new(), false, None).await
    }

    async fn start_inner(
        addr: &str,
        config: HttpConfig,
        extra: axum::Router,
        with_memory: bool,
        tool_servers: Option<Arc<dyn ToolServers>>,
    ) -> Server {
        let fake = FakeOpenAi::start().await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
        let mut llm = OpenAiCompatibleConfig::new(fake.base_url(), "fake-model");
        llm.retry = RetryPolicy {
            max_attempts: 1,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
        };
        let provider = Arc::new(OpenAiCompatible::new(llm).unwrap());
        let embedder = Arc::new(WordsEmbedder(EmbeddingModel {
            name: "test/words".into(),
            dim: 64,
        }));
        let rook = Rook::open(store.clone(), embedder, None, RookConfig::default())
            .await
            .unwrap();
        let tools = ToolRegistry::new(Duration::from_secs(10), 8_000);
        tools
            .add_provider(Arc::new(clara_tools::builtin::Builtin))
            .await
            .unwrap();
        tools
            .add_provider(Arc::new(clara_runtime::memory_tools::MemoryTools::new(
                rook.clone(),
            )))
            .await
            .unwrap();
        let engine =
            Engine::with_memory(fast_config(), store.clone(), provider, tools, rook.clone());
        let stop = CancellationToken::new();
        let deps = HttpDeps {
            engine: engine.clone(),
            store: store.clone(),
            memory: with_memory.then(|| rook.clone()),
            tool_servers,
        };
        let (app, web) = router_and_sink(deps, config, stop.clone());
        let app = app.merge(extra);
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let serve_stop = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(serve_stop.cancelled_owned())
                .await
                .unwrap();
        });
        Server {
            url: format!("http://127.0.0.1:{port}"),
            engine,
            store,
            rook,
            fake,
            web,
            stop,
            task,
            _dir: dir,
        }
    }

    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder().timeout(WAIT).build().unwrap()
    }

    /// Logs a page in on a loopback Clara (`GET /api/me`): its cookie header
    /// and CSRF token.
    pub async fn page_login(&self) -> (String, String) {
        let me = self
            .client()
            .get(format!("{}/api/me", self.url))
            .send()
            .await
            .unwrap();
        let cookie = me.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let body: serde_json::Value = me.json().await.unwrap();
        let csrf = body["csrf"]
            .as_str()
            .expect("logged in on loopback")
            .to_owned();
        (cookie, csrf)
    }

    /// Remembers `text` for the person with `person_id` on the web platform.
    pub async fn remember(&self, person_id: &str, text: &str, kind: MemoryKind) -> MemoryRecord {
        let user = self
            .store
            .resolve_user("web", person_id, person_id)
            .await
            .unwrap();
        let origin = Origin {
            user,
            person: person_id.into(),
            project: None,
            channel: ChannelKind::Direct,
            conversation: None,
            message: None,
            at_ms: clara_runtime::clock::now_ms(),
        };
        self.rook
            .remember(
                Scope::User(user),
                kind,
                text,
                &origin,
                "extraction",
                "said in conversation",
            )
            .await
            .unwrap()
    }

    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(WAIT, self.task).await;
        self.engine.shutdown().await;
    }
}

/// The workspace's `target/` folder (where screenshots go).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// Reads a server-sent event stream until `done` says stop; returns every
/// `data:` payload seen.
pub async fn read_sse(
    response: reqwest::Response,
    mut done: impl FnMut(&str) -> bool,
) -> Vec<String> {
    use futures::StreamExt;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    let read = async {
        while let Some(chunk) = stream.next().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
            while let Some(end) = buffer.find("\n\n") {
                let frame: String = buffer.drain(..end + 2).collect();
                for line in frame.lines() {
                    if let Some(data) = line.strip_prefix("data:") {
                        let data = data.trim_start().to_owned();
                        let stop = done(&data);
                        events.push(data);
                        if stop {
                            return;
                        }
                    }
                }
            }
        }
    };
    tokio::time::timeout(WAIT, read)
        .await
        .expect("the event stream ends in time");
    events
}
