//! Answering one thought: the model's stream into the send queue, and the tool
//! loop — the model asks for tools, Clara runs them (all of one round at once),
//! hands the results back, and asks again, up to a cap. A reply takes one
//! snapshot of the tool registry when it starts and keeps it for every round,
//! so tools added or removed meanwhile change the next reply, not this one.

use super::gate::{Call, Gate};
use super::memory::{MemoryRecall, RecallScope};
use crate::send_queue::SendQueue;
use async_trait::async_trait;
use clara_core::{ChatMessage, FileBlob, Permission, Thought, ToolCall, ToolRun};
use clara_llm::{ChatProvider, ChatRequest, LlmError, StreamEvent, Usage};
use clara_memory::Rook;
use clara_tools::{ToolContext, ToolEvent, ToolRegistry, ToolSet, ToolSideband};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How a reply ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReplyStatus {
    /// The whole answer was delivered.
    Finished,
    /// A newer message or a stop phrase cut it short.
    Cancelled,
    /// The model failed; the person was told.
    Failed,
}

/// The end of one reply.
#[derive(Debug)]
pub struct ReplyOutcome {
    /// The thought answered.
    pub thought: Thought,
    /// How it ended.
    pub status: ReplyStatus,
    /// What reached the person.
    pub delivered: String,
    /// Whether `delivered` is whole messages (human-paced parts) rather than a
    /// stream cut at an arbitrary point.
    pub whole_parts: bool,
    /// What answering cost.
    pub spent: Spent,
    /// The tool calls the reply made, in order, with their results and who let
    /// them run: stored with Clara's message.
    pub tool_runs: Vec<clara_core::ToolRun>,
}

/// Which tools a reply may use, and for whom: the tools themselves are the
/// worker's ([`Brain::tools`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ToolScope {
    /// Who they run for.
    pub context: ToolContext,
    /// Rounds of tool calls before the model must answer.
    pub max_rounds: usize,
}

/// One thought to answer, with its prompt: what a worker receives. Plain data,
/// so it crosses a process boundary (the Redis queue) as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ReplyJob {
    /// The thought.
    pub thought: Thought,
    /// The request for the model (window, summary; memories are added by the
    /// worker, see `recall`).
    pub request: ChatRequest,
    /// The tools offered, if any.
    pub tools: Option<ToolScope>,
    /// Whose memories to recall into the prompt, if anyone's.
    pub recall: Option<RecallScope>,
}

/// What answers a [`ReplyJob`]: the model, the tools and the memory. In the
/// embedded deployment the engine holds one; in the distributed one each worker
/// does.
#[derive(Clone)]
pub struct Brain {
    /// The chat model.
    pub provider: Arc<dyn ChatProvider>,
    /// Every tool a reply may be offered: the shared registry, of which each
    /// reply takes one snapshot.
    pub tools: ToolRegistry,
    /// Long-term memory, when enabled.
    pub memory: Option<Rook>,
    /// How long recall may take before the reply goes on without memories.
    pub recall_timeout: Duration,
    /// Whether each tool call may run: the owner's policy, grants and asks.
    pub gate: Gate,
}

/// Where a reply's steps go while the model answers: the send queue in the
/// process that owns the conversation, or the reply stream back to it from a
/// worker. Calls come in the order the person should see them.
#[async_trait]
pub trait ReplyOutput: Send {
    /// Clara is working on it.
    async fn typing(&mut self);
    /// More answer text.
    async fn push(&mut self, delta: &str);
    /// A tool started.
    async fn tool_started(&mut self, name: &str);
    /// A tool finished, or was refused: its record.
    async fn tool_finished(&mut self, run: &ToolRun);
    /// What a running tool printed lately (the output so far, or its tail).
    async fn tool_progress(&mut self, name: &str, text: &str);
    /// A file a tool sends the person with the reply.
    async fn file(&mut self, file: FileBlob, caption: Option<String>);
    /// When the output next has work of its own (an edit coming due).
    fn next_wake(&self) -> Option<Instant> {
        None
    }
    /// Does the work that came due at [`ReplyOutput::next_wake`].
    async fn wake(&mut self) {}
}

#[async_trait]
impl ReplyOutput for SendQueue {
    async fn typing(&mut self) {
        SendQueue::typing(self).await;
    }
    async fn push(&mut self, delta: &str) {
        SendQueue::push(self, delta).await;
    }
    async fn tool_started(&mut self, name: &str) {
        SendQueue::tool_started(self, name).await;
    }
    async fn tool_finished(&mut self, run: &ToolRun) {
        SendQueue::tool_finished(self, run).await;
    }
    async fn tool_progress(&mut self, name: &str, text: &str) {
        SendQueue::tool_progress(self, name, text).await;
    }
    async fn file(&mut self, file: FileBlob, caption: Option<String>) {
        SendQueue::file(self, file, caption).await;
    }
    fn next_wake(&self) -> Option<Instant> {
        SendQueue::next_wake(self)
    }
    async fn wake(&mut self) {
        SendQueue::wake(self).await;
    }
}

/// What answering cost: tokens over every model call and tool calls made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Spent {
    /// Tokens used over every model call of the reply, when the provider said.
    pub usage: Option<Usage>,
    /// Tool calls made.
    pub tool_calls: usize,
    /// When the answer's first text arrived (in this process; not sent across).
    #[serde(skip)]
    pub first_token: Option<std::time::Instant>,
}

impl Brain {
    /// Answers `job` into `out`: recalls memories into the prompt, then streams
    /// the model's answer and runs the tool loop. Cancel by dropping the future.
    pub async fn answer(
        &self,
        job: ReplyJob,
        out: &mut dyn ReplyOutput,
        spent: &mut Spent,
    ) -> Result<(), LlmError> {
        let ReplyJob {
            thought,
            mut request,
            tools,
            recall,
        } = job;
        out.typing().await;
        if let (Some(rook), Some(scope)) = (&self.memory, recall) {
            MemoryRecall {
                rook: rook.clone(),
                scope,
                timeout: self.recall_timeout,
            }
            .into_prompt(&thought, &mut request)
            .await;
        }
        // The tools of this reply, from its first round to its last.
        let snapshot = self.tools.snapshot();
        let tools = tools.filter(|_| !snapshot.is_empty());
        let mut tally = Tally::default();
        let tools = tools.as_ref().map(|scope| Tools {
            set: &snapshot,
            scope,
            gate: &self.gate,
        });
        let result = answer(&*self.provider, request, tools, out, &mut tally).await;
        *spent = Spent {
            usage: tally.usage,
            tool_calls: tally.tool_calls,
            first_token: tally.first_token,
        };
        result
    }
}

/// Answers one thought in this process: streams the model's reply into the send
/// queue until it ends, fails or `cancel` fires. Cancelling drops the model's
/// stream, which closes its connection, and nothing more is sent.
pub async fn run_reply(
    brain: &Brain,
    job: ReplyJob,
    mut queue: SendQueue,
    cancel: CancellationToken,
) -> ReplyOutcome {
    let thought = job.thought.clone();
    let mut spent = Spent::default();
    let started = std::time::Instant::now();
    let result = {
        let work = brain.answer(job, &mut queue, &mut spent);
        tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            result = work => Some(result),
        }
    };
    let (status, delivered) = match result {
        None => (ReplyStatus::Cancelled, queue.cancelled().await),
        Some(Ok(())) => (ReplyStatus::Finished, queue.finish().await),
        Some(Err(error)) => {
            tracing::warn!(thought = %thought.id, %error, "reply failed");
            (
                ReplyStatus::Failed,
                queue.failed(&error.user_message()).await,
            )
        }
    };
    record_metrics(status, started, spent.first_token, &spent);
    ReplyOutcome {
        thought,
        status,
        delivered,
        whole_parts: queue.delivers_whole_parts(),
        spent,
        tool_runs: queue.take_tool_runs(),
    }
}

#[derive(Default)]
struct Tally {
    usage: Option<Usage>,
    tool_calls: usize,
    /// When the answer's first text arrived.
    first_token: Option<std::time::Instant>,
}

/// Reply latency (to the first token and in all), LLM tokens and failures, for
/// `/metrics`. Recorded where the reply is delivered, so a distributed
/// deployment's gateway shows the latency people see.
pub fn record_metrics(
    status: ReplyStatus,
    started: std::time::Instant,
    first_token: Option<std::time::Instant>,
    spent: &Spent,
) {
    let outcome = match status {
        ReplyStatus::Finished => "finished",
        ReplyStatus::Cancelled => "cancelled",
        ReplyStatus::Failed => "failed",
    };
    metrics::counter!("clara_replies_total", "outcome" => outcome).increment(1);
    metrics::histogram!("clara_reply_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    if let Some(first) = first_token {
        metrics::histogram!("clara_reply_first_token_seconds")
            .record(first.duration_since(started).as_secs_f64());
    }
    if let Some(usage) = &spent.usage {
        metrics::counter!("clara_llm_tokens_total", "direction" => "input")
            .increment(u64::from(usage.input_tokens));
        metrics::counter!("clara_llm_tokens_total", "direction" => "output")
            .increment(u64::from(usage.output_tokens));
    }
    metrics::counter!("clara_tool_calls_total").increment(spent.tool_calls as u64);
    if status == ReplyStatus::Failed {
        metrics::counter!("clara_errors_total", "kind" => "reply").increment(1);
    }
}

impl Tally {
    fn add(&mut self, usage: Option<Usage>) {
        let Some(u) = usage else { return };
        let total = self.usage.get_or_insert_with(Usage::default);
        total.input_tokens = total.input_tokens.saturating_add(u.input_tokens);
        total.output_tokens = total.output_tokens.saturating_add(u.output_tokens);
        total.cost_usd = match (total.cost_usd, u.cost_usd) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0.0) + b.unwrap_or(0.0)),
        };
    }
}

/// What a reply's tool calls go through: the snapshot, for whom, and the gate.
#[derive(Clone, Copy)]
struct Tools<'a> {
    set: &'a ToolSet,
    scope: &'a ToolScope,
    gate: &'a Gate,
}

async fn answer(
    provider: &dyn ChatProvider,
    mut request: ChatRequest,
    tools: Option<Tools<'_>>,
    queue: &mut dyn ReplyOutput,
    tally: &mut Tally,
) -> Result<(), LlmError> {
    let max_rounds = tools.map_or(0, |t| t.scope.max_rounds);
    let mut said = String::new();
    // Set once a round has read untrusted content (an MCP server's output, a
    // web page): from the next round on, tools that send need approval.
    let mut tainted = false;
    for round in 0..=max_rounds {
        // The last round offers no tools, so the model has to answer.
        request.tools = match tools {
            Some(t) if round < max_rounds => t.set.specs(),
            _ => Vec::new(),
        };
        let continues = !said.trim().is_empty();
        // Only a round that may call tools needs the request again afterwards.
        let this_round = if request.tools.is_empty() {
            std::mem::take(&mut request)
        } else {
            request.clone()
        };
        let (text, calls) = stream_round(provider, this_round, queue, tally, continues).await?;
        said.push_str(&text);
        let Some(tools) = tools.filter(|_| !calls.is_empty()) else {
            return if said.trim().is_empty() {
                Err(LlmError::Empty)
            } else {
                Ok(())
            };
        };
        for call in &calls {
            queue.tool_started(&call.name).await;
        }
        // Independent calls of one round run at once (each waits for its own
        // approval, if it needs one). Meanwhile what they report on the side
        // (live output, files) reaches the person, and held-back edits go out.
        let (events, heard) = mpsc::unbounded_channel();
        let (done, finished) = tokio::sync::oneshot::channel::<()>();
        let work = async {
            let runs = futures::future::join_all(calls.iter().map(|call| {
                let context = ToolContext {
                    sideband: Some(ToolSideband::new(events.clone(), &call.id, &call.name)),
                    ..tools.scope.context.clone()
                };
                async move { run_call(tools, call, tainted, &context).await }
            }))
            .await;
            let _ = done.send(());
            runs
        };
        // The calls and the relay run side by side: a slow delivery (a rate
        // limit, an upload) never holds up a running tool.
        let (runs, ()) = tokio::join!(work, relay_until(queue, heard, finished));
        tally.tool_calls += calls.len();
        request
            .messages
            .push(ChatMessage::tool_request(text, calls));
        for (run, untrusted) in runs {
            tracing::debug!(tool = %run.name, ok = run.ok, "tool finished");
            tainted |= untrusted;
            queue.tool_finished(&run).await;
            request
                .messages
                .push(ChatMessage::tool_result(run.call_id.clone(), run.result));
        }
    }
    // Unreachable in practice: the last round offers no tools. A model that calls
    // one anyway has its text kept and the reply ends.
    if said.trim().is_empty() {
        Err(LlmError::Empty)
    } else {
        Ok(())
    }
}

/// Relays what the round's tools report on the side until they have all
/// finished (`finished`), doing the output's own work as it comes due, then
/// what is left.
async fn relay_until(
    queue: &mut dyn ReplyOutput,
    mut heard: mpsc::UnboundedReceiver<ToolEvent>,
    mut finished: tokio::sync::oneshot::Receiver<()>,
) {
    loop {
        let wake = queue.next_wake();
        tokio::select! {
            biased;
            Some(event) = heard.recv() => relay(queue, event).await,
            _ = &mut finished => break,
            () = async { if let Some(at) = wake { tokio::time::sleep_until(at).await } }, if wake.is_some() => {
                queue.wake().await;
            }
        }
    }
    while let Ok(event) = heard.try_recv() {
        relay(queue, event).await;
    }
}

/// Hands what a running tool reported on the side to the person.
async fn relay(queue: &mut dyn ReplyOutput, event: ToolEvent) {
    match event {
        ToolEvent::Progress { tool, text, .. } => queue.tool_progress(&tool, &text).await,
        ToolEvent::File { file, caption, .. } => queue.file(file, caption).await,
    }
}

/// One tool call: checked, let through (or not) by the gate, run. Returns its
/// record and whether it read untrusted content.
async fn run_call(
    tools: Tools<'_>,
    call: &ToolCall,
    tainted: bool,
    context: &ToolContext,
) -> (ToolRun, bool) {
    let started_at_ms = chrono::Utc::now().timestamp_millis();
    let started = std::time::Instant::now();
    let record = |result: String, ok: bool, permission: Permission| ToolRun {
        call_id: call.id.clone(),
        name: call.name.clone(),
        arguments: call.arguments.clone(),
        result,
        ok,
        permission,
        started_at_ms,
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    };
    let checked = match tools.set.check(call) {
        Ok(checked) => checked,
        Err(refused) => return (record(refused.content, false, Permission::Policy), false),
    };
    let permission = tools
        .gate
        .permit(Call {
            tool: &call.name,
            arguments: &checked.arguments,
            traits: &checked.traits,
            tainted,
            context: &tools.scope.context,
        })
        .await;
    if let Permission::Refused { reason } = &permission {
        let result = format!(
            "Not run: {reason} Tell the person if it matters; do not repeat the same call unless they ask."
        );
        return (record(result, false, permission), false);
    }
    let untrusted = checked.traits.untrusted_output;
    let outcome = tools.set.run_checked(call, checked, context).await;
    (record(outcome.content, outcome.ok, permission), untrusted)
}

/// One model call: streams its text to the queue, returns the text and the tool
/// calls it made.
async fn stream_round(
    provider: &dyn ChatProvider,
    request: ChatRequest,
    queue: &mut dyn ReplyOutput,
    tally: &mut Tally,
    continues: bool,
) -> Result<(String, Vec<ToolCall>), LlmError> {
    let mut stream = provider.stream_chat(request).await?;
    let mut text = String::new();
    let mut calls = Vec::new();
    loop {
        let wake = queue.next_wake();
        tokio::select! {
            () = async { if let Some(at) = wake { tokio::time::sleep_until(at).await } }, if wake.is_some() => {
                queue.wake().await;
            }
            event = stream.next() => match event {
                Some(Ok(StreamEvent::Delta(delta))) => {
                    tally.first_token.get_or_insert_with(std::time::Instant::now);
                    // After a tool round the answer goes on in a new paragraph.
                    if continues && text.is_empty() && !delta.trim().is_empty() {
                        queue.push("\n\n").await;
                    }
                    text.push_str(&delta);
                    queue.push(&delta).await;
                }
                Some(Ok(StreamEvent::ToolCall(call))) => calls.push(call),
                Some(Ok(StreamEvent::Finished { usage, .. })) => tally.add(usage),
                Some(Err(error)) => return Err(error),
                None => break,
            },
        }
    }
    Ok((text, calls))
}
