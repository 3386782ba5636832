//! Memory in the engine: recalled memories reach the prompt, each answered thought
//! is learned from in the background (durably, and never in a reply's way), and a
//! person can have a memory forgotten by asking in conversation.

use crate::support::*;
use async_trait::async_trait;
use clara_core::{ChannelKind, MemoryKind, Scope, UserId};
use clara_llm::embed::{EmbedError, Embedder, EmbeddingModel};
use clara_llm::{
    ChatProvider, ChatRequest, ChatStream, LlmError, OpenAiCompatible, OpenAiCompatibleConfig,
    StreamEvent,
};
use clara_memory::{Origin, Rook, RookConfig};
use clara_runtime::memory_tools::MemoryTools;
use clara_runtime::{Engine, SessionKeeper};
use clara_store::{MemoryEvent, MemoryFilter, Store};
use clara_testkit::{FakeOpenAi, FakeReply};
use clara_tools::ToolRegistry;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

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

/// The extraction model: every answer waits for a permit, so a test decides when
/// extraction may finish.
struct GatedExtractor {
    gate: Semaphore,
    answer: String,
    started: Semaphore,
}

impl GatedExtractor {
    fn new(answer: &str) -> Arc<Self> {
        Arc::new(Self {
            gate: Semaphore::new(0),
            answer: answer.to_owned(),
            started: Semaphore::new(0),
        })
    }
}

#[async_trait]
impl ChatProvider for GatedExtractor {
    fn name(&self) -> &str {
        "gated"
    }
    fn model(&self) -> &str {
        "gated"
    }
    async fn stream_chat(&self, _: ChatRequest) -> Result<ChatStream, LlmError> {
        self.started.add_permits(1);
        self.gate.acquire().await.unwrap().forget();
        let events = vec![
            Ok(StreamEvent::Delta(self.answer.clone())),
            Ok(StreamEvent::Finished {
                reason: None,
                usage: None,
            }),
        ];
        Ok(Box::pin(futures::stream::iter(events)))
    }
}

struct Setup {
    engine: Engine,
    sink: Arc<RecordingSink>,
    fake: FakeOpenAi,
    rook: Rook,
    store: Store,
    ann: UserId,
}

async fn setup(dir: &tempfile::TempDir, extractor: Arc<GatedExtractor>) -> Setup {
    let fake = FakeOpenAi::start().await;
    let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
    let embedder = Arc::new(WordsEmbedder(EmbeddingModel {
        name: "test/words".into(),
        dim: 64,
    }));
    let rook = Rook::open(
        store.clone(),
        embedder,
        Some(extractor),
        RookConfig::default(),
    )
    .await
    .unwrap();
    let provider = Arc::new(
        OpenAiCompatible::new(OpenAiCompatibleConfig::new(fake.base_url(), "fake-model")).unwrap(),
    );
    let tools = ToolRegistry::default();
    tools
        .add_provider(Arc::new(MemoryTools::new(rook.clone())))
        .await
        .unwrap();
    let engine = Engine::with_memory(fast_config(), store.clone(), provider, tools, rook.clone());
    let sink = RecordingSink::streaming();
    engine.attach("test", sink.clone());
    let ann = store.resolve_user("test", "u-ann", "Ann").await.unwrap();
    Setup {
        engine,
        sink,
        fake,
        rook,
        store,
        ann,
    }
}

fn origin(user: UserId, channel: ChannelKind) -> Origin {
    Origin {
        user,
        person: "Ann".into(),
        project: None,
        channel,
        conversation: None,
        message: None,
        at_ms: 1,
    }
}

async fn keeper_pass(engine: &Engine) -> clara_runtime::sessions::KeeperPass {
    SessionKeeper::new(engine.clone())
        .pass(clara_runtime::clock::now_ms())
        .await
        .unwrap()
}

#[tokio::test]
async fn recalled_memories_reach_the_prompt_and_private_ones_stay_out_of_groups() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, GatedExtractor::new(r#"{"facts": []}"#)).await;
    s.rook
        .remember(
            Scope::User(s.ann),
            MemoryKind::Preference,
            "Ann drinks oolong tea every morning",
            &origin(s.ann, ChannelKind::Direct),
            "test",
            "test",
        )
        .await
        .unwrap();
    s.fake.push(FakeReply::text("Oolong, of course."));
    s.engine
        .submit(inbound("1", "which tea should I drink this morning?"))
        .await
        .unwrap();
    s.sink.wait_until("the answer", |c| ends(c) == 1).await;
    let request = s.fake.requests().pop().unwrap();
    let system = request.body["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        system.contains("(preference) Ann drinks oolong tea every morning"),
        "{system}"
    );

    // The same person in a group: the DM memory is not in the prompt.
    let mut group = inbound("2", "which tea should I drink this morning?");
    group.conversation.channel = "group-1".into();
    group.conversation.kind = ChannelKind::Group;
    s.fake.push(FakeReply::text("Any tea."));
    s.engine.submit(group).await.unwrap();
    s.sink
        .wait_until("the group answer", |c| ends(c) == 2)
        .await;
    let request = s.fake.requests().pop().unwrap();
    let system = request.body["messages"][0]["content"].as_str().unwrap();
    assert!(!system.contains("oolong"), "{system}");
}

#[tokio::test]
async fn slow_extraction_never_holds_up_a_reply() {
    let dir = tempfile::tempdir().unwrap();
    let extractor = GatedExtractor::new(r#"{"facts": ["Ann is learning Italian"]}"#);
    let s = setup(&dir, extractor.clone()).await;
    let keeper = CancellationTokenGuard::spawn(&s.engine);

    s.fake.push(FakeReply::text("Brava!"));
    s.engine
        .submit(inbound("1", "I started learning Italian."))
        .await
        .unwrap();
    s.sink
        .wait_until("the first answer", |c| ends(c) == 1)
        .await;
    // The extraction of that exchange has started and is stuck at the gate …
    tokio::time::timeout(Duration::from_secs(10), extractor.started.acquire())
        .await
        .expect("extraction starts after the exchange")
        .unwrap()
        .forget();

    // … and the next reply streams all the same.
    s.fake.push(FakeReply::text("Ciao!"));
    s.engine
        .submit(inbound("2", "Say hello in Italian"))
        .await
        .unwrap();
    s.sink
        .wait_until("the second answer", |c| ends(c) == 2)
        .await;
    assert!(
        s.rook
            .list(Scope::User(s.ann), MemoryFilter::default())
            .await
            .unwrap()
            .is_empty(),
        "extraction is still waiting"
    );

    // Let extraction finish: the fact is remembered, traced to the message it came from.
    extractor.gate.add_permits(1);
    let memories = wait_for_memories(&s.rook, s.ann, 1).await;
    assert_eq!(memories[0].text, "Ann is learning Italian");
    let history = s.rook.history(memories[0].id).await.unwrap();
    let source = history[0].message.expect("the source message is recorded");
    let stored = s
        .store
        .recent_messages(history[0].conversation.unwrap(), 0, 10, 100)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .any(|m| m.id == source && m.content.contains("Italian"))
    );
    drop(keeper);
}

#[tokio::test]
async fn pending_extraction_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = setup(&dir, GatedExtractor::new("unused")).await;
        s.fake.push(FakeReply::text("Noted."));
        s.engine
            .submit(inbound("1", "My sister Lucia lives in Turin."))
            .await
            .unwrap();
        s.sink.wait_until("the answer", |c| ends(c) == 1).await;
        // Clara stops before any keeper ran the extraction job.
        s.engine.shutdown().await;
        s.store.close().await;
    }
    let extractor = GatedExtractor::new(r#"{"facts": ["Ann's sister Lucia lives in Turin"]}"#);
    extractor.gate.add_permits(10);
    let s = setup(&dir, extractor).await;
    let pass = keeper_pass(&s.engine).await;
    assert_eq!(pass.learned, 1, "{pass:?}");
    let memories = s
        .rook
        .list(Scope::User(s.ann), MemoryFilter::default())
        .await
        .unwrap();
    assert_eq!(memories[0].text, "Ann's sister Lucia lives in Turin");
}

#[tokio::test]
async fn asking_in_conversation_forgets_a_memory_and_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = setup(&dir, GatedExtractor::new(r#"{"facts": []}"#)).await;
    let memory = s
        .rook
        .remember(
            Scope::User(s.ann),
            MemoryKind::Fact,
            "Ann lives in Paris",
            &origin(s.ann, ChannelKind::Direct),
            "test",
            "test",
        )
        .await
        .unwrap();
    // The model looks the memory up, then forgets it, then answers.
    s.fake.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![(
            "memory__recall".into(),
            r#"{"query": "where Ann lives"}"#.into(),
        )],
        fragmented: false,
    });
    s.fake.push(FakeReply::ToolCalls {
        text_before: String::new(),
        calls: vec![(
            "memory__forget".into(),
            format!(
                r#"{{"id": "{}", "reason": "Ann asked to forget where she lives"}}"#,
                &memory.id.to_string()[..13]
            ),
        )],
        fragmented: false,
    });
    s.fake.push(FakeReply::text("Done, I have forgotten it."));
    s.engine
        .submit(inbound("1", "Please forget where I live."))
        .await
        .unwrap();
    s.sink.wait_until("the answer", |c| ends(c) == 1).await;

    let requests = s.fake.requests();
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(tools.contains(&"memory__forget"), "{tools:?}");
    // The recall result the model read named the memory.
    let recall_result = requests[1].body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|m| m["role"] == "tool")
        .unwrap()["content"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        recall_result.contains("Ann lives in Paris"),
        "{recall_result}"
    );

    assert!(
        s.rook
            .list(Scope::User(s.ann), MemoryFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let history = s.rook.history(memory.id).await.unwrap();
    let forget = history.last().unwrap();
    assert_eq!(forget.event, MemoryEvent::Forget);
    assert_eq!(forget.actor, "person");
    assert_eq!(forget.reason, "Ann asked to forget where she lives");
    assert!(forget.conversation.is_some() && forget.message.is_some());
}

async fn wait_for_memories(rook: &Rook, user: UserId, n: usize) -> Vec<clara_store::MemoryRecord> {
    for _ in 0..200 {
        let list = rook
            .list(Scope::User(user), MemoryFilter::default())
            .await
            .unwrap();
        if list.len() >= n {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{n} memories never appeared");
}

/// Runs the session keeper until dropped.
struct CancellationTokenGuard(tokio_util::sync::CancellationToken);

impl CancellationTokenGuard {
    fn spawn(engine: &Engine) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn(SessionKeeper::new(engine.clone()).run(stop.clone()));
        Self(stop)
    }
}

impl Drop for CancellationTokenGuard {
    fn drop(&mut self) {
        self.0.cancel();
    }
}
