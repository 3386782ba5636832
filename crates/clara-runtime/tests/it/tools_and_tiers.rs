//! The tool loop and tier choice, with a scripted model: what the model asks, what
//! Clara runs, and what goes back to the model.

use crate::support::*;
use async_trait::async_trait;
use clara_core::{Outbound, Role, ToolCall};
use clara_llm::{ChatProvider, ChatRequest, ChatStream, LlmError, StreamEvent, Usage};
use clara_runtime::{Engine, EngineConfig, TierModels};
use clara_store::Store;
use clara_tools::{StaticTools, Tool, ToolContext, ToolError, ToolRegistry};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use tokio::sync::Notify;

/// A model that answers from a script, one list of events per call, and records
/// every request. When the script is empty it says "done".
#[derive(Default)]
pub struct ScriptedModel {
    script: Mutex<VecDeque<Vec<StreamEvent>>>,
    requests: Mutex<Vec<ChatRequest>>,
    always_call_tools: bool,
}

impl ScriptedModel {
    pub fn then(self, events: Vec<StreamEvent>) -> Self {
        self.script.lock().push_back(events);
        self
    }
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().clone()
    }
}

pub fn call(id: &str, name: &str, args: &str) -> StreamEvent {
    StreamEvent::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: args.into(),
    })
}

pub fn finished(input: u32, output: u32) -> StreamEvent {
    StreamEvent::Finished {
        reason: Some("stop".into()),
        usage: Some(Usage {
            input_tokens: input,
            output_tokens: output,
            cost_usd: None,
        }),
    }
}

#[async_trait]
impl ChatProvider for ScriptedModel {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "scripted-default"
    }
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let offered_tools = !request.tools.is_empty();
        self.requests.lock().push(request);
        let events = match self.script.lock().pop_front() {
            Some(events) => events,
            None if self.always_call_tools && offered_tools => {
                vec![call("again", "clara__current_time", "{}"), finished(1, 1)]
            }
            None => vec![StreamEvent::Delta("done".into()), finished(1, 1)],
        };
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }
}

async fn engine_with(
    model: Arc<ScriptedModel>,
    config: EngineConfig,
) -> (Engine, Arc<RecordingSink>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("clara.db")).await.unwrap();
    let tools = ToolRegistry::default();
    tools
        .add_provider(Arc::new(clara_tools::builtin::Builtin))
        .await
        .unwrap();
    let engine = Engine::with_tools(config, store, model, tools);
    let sink = RecordingSink::streaming();
    engine.attach("test", sink.clone());
    (engine, sink, dir)
}

#[tokio::test]
async fn the_model_calls_a_tool_and_answers_with_its_result() {
    let model = Arc::new(
        ScriptedModel::default()
            .then(vec![
                StreamEvent::Delta("Let me look.".into()),
                call("call_1", "clara__current_time", "{}"),
                finished(100, 10),
            ])
            .then(vec![
                StreamEvent::Delta("It is noon.".into()),
                finished(150, 5),
            ]),
    );
    let (engine, sink, _dir) = engine_with(model.clone(), fast_config()).await;
    engine
        .submit(inbound("1", "what time is it?"))
        .await
        .unwrap();
    let calls = sink.wait_until("the answer", |c| ends(c) == 1).await;

    let requests = model.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[0]
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>(),
        vec!["clara__current_time"]
    );
    let tail = &requests[1].messages[requests[1].messages.len() - 2..];
    assert_eq!(tail[0].role, Role::Assistant);
    assert_eq!(tail[0].content, "Let me look.");
    assert_eq!(tail[0].tool_calls[0].name, "clara__current_time");
    assert_eq!(tail[1].role, Role::Tool);
    assert_eq!(tail[1].tool_call_id.as_deref(), Some("call_1"));
    let year = chrono::Utc::now().format("%Y").to_string();
    assert!(
        tail[1].content.contains(&year),
        "the tool's real result goes back: {}",
        tail[1].content
    );

    assert!(
        calls.iter().any(
            |c| matches!(c, Outbound::ToolStarted { name, .. } if name == "clara__current_time")
        )
    );
    assert!(
        calls
            .iter()
            .any(|c| matches!(c, Outbound::ToolFinished { ok: true, .. }))
    );
    let thought = calls.iter().find_map(thought_of).unwrap();
    assert_eq!(sink.streamed(thought), "Let me look.\n\nIt is noon.");

    // Both model calls are counted against the thought and the person.
    engine.shutdown().await;
    let usage = engine
        .store()
        .thought_usage(thought)
        .await
        .unwrap()
        .expect("usage recorded");
    assert_eq!(
        (usage.input_tokens, usage.output_tokens, usage.tool_calls),
        (250, 15, 1)
    );
    assert_eq!(
        (
            usage.provider.as_str(),
            usage.model.as_str(),
            usage.tier.as_str()
        ),
        ("scripted", "scripted-default", "mid")
    );
    let totals = engine
        .store()
        .user_usage(usage.user.expect("the person"), 0)
        .await
        .unwrap();
    assert_eq!((totals.replies, totals.input_tokens), (1, 250));
}

#[tokio::test]
async fn invalid_arguments_go_back_to_the_model_as_a_tool_error() {
    let model = Arc::new(
        ScriptedModel::default()
            .then(vec![
                call("a", "clara__current_time", "{\"utc_offset\": "),
                call("b", "clara__no_such_tool", "{}"),
                finished(1, 1),
            ])
            .then(vec![StreamEvent::Delta("Sorry.".into()), finished(1, 1)]),
    );
    let (engine, sink, _dir) = engine_with(model.clone(), fast_config()).await;
    engine.submit(inbound("1", "time in Oslo?")).await.unwrap();
    sink.wait_until("the answer", |c| ends(c) == 1).await;
    let second = &model.requests()[1];
    let results: Vec<_> = second
        .messages
        .iter()
        .filter(|m| m.role == Role::Tool)
        .collect();
    assert_eq!(results.len(), 2, "both calls of the round answered");
    assert_eq!(results[0].tool_call_id.as_deref(), Some("a"));
    assert!(
        results[0].content.contains("not valid JSON"),
        "{}",
        results[0].content
    );
    assert!(
        results[1].content.contains("no tool named"),
        "{}",
        results[1].content
    );
}

#[tokio::test]
async fn the_tool_rounds_are_capped_and_the_last_round_must_answer() {
    let model = Arc::new(ScriptedModel {
        always_call_tools: true,
        ..ScriptedModel::default()
    });
    let mut config = fast_config();
    config.tool_rounds = 2;
    let (engine, sink, _dir) = engine_with(model.clone(), config).await;
    engine.submit(inbound("1", "loop forever?")).await.unwrap();
    let calls = sink.wait_until("the answer", |c| ends(c) == 1).await;
    let requests = model.requests();
    assert_eq!(requests.len(), 3, "two tool rounds, then one without tools");
    assert!(!requests[1].tools.is_empty());
    assert!(requests[2].tools.is_empty());
    let thought = calls.iter().find_map(thought_of).unwrap();
    assert_eq!(sink.streamed(thought), "done");
}

#[tokio::test]
async fn tiers_pick_the_model() {
    let model = Arc::new(ScriptedModel::default());
    let mut config = fast_config();
    config.tiers = TierModels {
        high: Some("big".into()),
        mid: None,
        low: Some("small".into()),
    };
    let (engine, sink, _dir) = engine_with(model.clone(), config).await;
    engine
        .submit(inbound("1", "!high prove it?"))
        .await
        .unwrap();
    sink.wait_until("answer 1", |c| ends(c) == 1).await;
    engine.submit(inbound("2", "and normally?")).await.unwrap();
    sink.wait_until("answer 2", |c| ends(c) == 2).await;
    engine.submit(inbound("3", "!low thanks.")).await.unwrap();
    sink.wait_until("answer 3", |c| ends(c) == 3).await;
    let models: Vec<_> = model.requests().iter().map(|r| r.model.clone()).collect();
    assert_eq!(
        models,
        vec![Some("big".to_string()), None, Some("small".to_string())]
    );
    assert_eq!(
        model.requests()[0].messages.last().unwrap().content,
        "prove it?"
    );
}

#[tokio::test]
async fn automatic_tiers_follow_the_thought() {
    let model = Arc::new(ScriptedModel::default());
    let mut config = fast_config();
    config.auto_tier = true;
    config.tiers = TierModels {
        high: Some("big".into()),
        mid: Some("medium".into()),
        low: Some("small".into()),
    };
    let (engine, sink, _dir) = engine_with(model.clone(), config).await;
    engine.submit(inbound("1", "thanks!")).await.unwrap();
    sink.wait_until("answer 1", |c| ends(c) == 1).await;
    engine
        .submit(inbound(
            "2",
            "Could you explain the trade-offs between Raft and Paxos for a small cluster?",
        ))
        .await
        .unwrap();
    sink.wait_until("answer 2", |c| ends(c) == 2).await;
    let models: Vec<_> = model
        .requests()
        .iter()
        .map(|r| r.model.clone().unwrap())
        .collect();
    assert_eq!(models, vec!["small", "big"]);
}

/// A tool that tells `started` it runs, then answers once `go` is notified.
struct Gated {
    started: Arc<Notify>,
    go: Arc<Notify>,
}

#[async_trait]
impl Tool for Gated {
    fn name(&self) -> &str {
        "slow"
    }
    fn traits(&self) -> clara_tools::ToolTraits {
        clara_tools::ToolTraits::read_only()
    }
    fn description(&self) -> &str {
        "Takes its time."
    }
    fn parameters(&self) -> serde_json::Value {
        serde_json::json!({"type": "object"})
    }
    async fn call(&self, _: serde_json::Value, _: &ToolContext) -> Result<String, ToolError> {
        self.started.notify_one();
        self.go.notified().await;
        Ok("the slow answer".into())
    }
}

fn offered(request: &ChatRequest) -> Vec<&str> {
    request.tools.iter().map(|t| t.name.as_str()).collect()
}

#[tokio::test]
async fn a_reply_keeps_its_tools_while_servers_come_and_go() {
    let model =
        Arc::new(ScriptedModel::default().then(vec![call("s", "lab__slow", "{}"), finished(1, 1)]));
    let (engine, sink, _dir) = engine_with(model.clone(), fast_config()).await;
    let (started, go) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let slow = Gated {
        started: Arc::clone(&started),
        go: Arc::clone(&go),
    };
    engine.tools().set_server("lab", vec![Arc::new(slow)]);

    engine
        .submit(inbound("1", "run the slow one"))
        .await
        .unwrap();
    tokio::time::timeout(WAIT, started.notified())
        .await
        .expect("the slow tool starts");
    // While its call runs, the lab goes away and a web server comes.
    assert!(engine.tools().remove_server("lab"));
    let web = StaticTools::new(
        "web",
        vec![Arc::new(Gated {
            started: Arc::new(Notify::new()),
            go: Arc::new(Notify::new()),
        }) as Arc<dyn Tool>],
    );
    engine.tools().add_provider(Arc::new(web)).await.unwrap();
    go.notify_one();
    sink.wait_until("the first answer", |c| ends(c) == 1).await;

    engine.submit(inbound("2", "and now?")).await.unwrap();
    sink.wait_until("the second answer", |c| ends(c) == 2).await;

    let requests = model.requests();
    assert_eq!(requests.len(), 3);
    // The first reply offered, ran and offered again the set it started with.
    assert_eq!(
        offered(&requests[0]),
        vec!["clara__current_time", "lab__slow"]
    );
    assert_eq!(
        offered(&requests[1]),
        vec!["clara__current_time", "lab__slow"]
    );
    let result = requests[1]
        .messages
        .iter()
        .find(|m| m.role == Role::Tool)
        .unwrap();
    assert_eq!(result.content, "the slow answer");
    // The next reply sees the registry as it is now.
    assert_eq!(
        offered(&requests[2]),
        vec!["clara__current_time", "web__slow"]
    );
}
