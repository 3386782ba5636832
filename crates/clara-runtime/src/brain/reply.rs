//! Answering one thought: the model's stream into the send queue, and the tool
//! loop — the model asks for tools, Clara runs them (all of one round at once),
//! hands the results back, and asks again, up to a cap.

use crate::send_queue::SendQueue;
use clara_core::{ChatMessage, Thought, ToolCall};
use clara_llm::{ChatProvider, ChatRequest, LlmError, StreamEvent, Usage};
use clara_tools::{ToolContext, ToolRegistry};
use futures::StreamExt;
use std::sync::Arc;
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
    /// Tokens used over every model call of the reply, when the provider said.
    pub usage: Option<Usage>,
    /// Tool calls made.
    pub tool_calls: usize,
}

/// The tools a reply may use.
#[derive(Clone, Debug)]
pub struct ReplyTools {
    /// The tools.
    pub registry: Arc<ToolRegistry>,
    /// Who they run for.
    pub context: ToolContext,
    /// Rounds of tool calls before the model must answer.
    pub max_rounds: usize,
}

/// One thought to answer, with its prompt: what a worker receives.
#[derive(Debug)]
pub struct ReplyJob {
    /// The thought.
    pub thought: Thought,
    /// The request for the model.
    pub request: ChatRequest,
    /// The tools offered, if any.
    pub tools: Option<ReplyTools>,
}

/// Answers one thought: streams the model's reply into the send queue until it
/// ends, fails or `cancel` fires. Cancelling drops the model's stream, which closes
/// its connection, and nothing more is sent.
pub async fn run_reply(
    provider: Arc<dyn ChatProvider>,
    job: ReplyJob,
    mut queue: SendQueue,
    cancel: CancellationToken,
) -> ReplyOutcome {
    let ReplyJob {
        thought,
        request,
        tools,
    } = job;
    let mut tally = Tally::default();
    let started = std::time::Instant::now();
    let result = {
        let work = answer(&*provider, request, tools.as_ref(), &mut queue, &mut tally);
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
    record_metrics(status, started, &tally);
    ReplyOutcome {
        thought,
        status,
        delivered,
        whole_parts: queue.delivers_whole_parts(),
        usage: tally.usage,
        tool_calls: tally.tool_calls,
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
/// `/metrics`.
fn record_metrics(status: ReplyStatus, started: std::time::Instant, tally: &Tally) {
    let outcome = match status {
        ReplyStatus::Finished => "finished",
        ReplyStatus::Cancelled => "cancelled",
        ReplyStatus::Failed => "failed",
    };
    metrics::counter!("clara_replies_total", "outcome" => outcome).increment(1);
    metrics::histogram!("clara_reply_seconds", "outcome" => outcome)
        .record(started.elapsed().as_secs_f64());
    if let Some(first) = tally.first_token {
        metrics::histogram!("clara_reply_first_token_seconds")
            .record(first.duration_since(started).as_secs_f64());
    }
    if let Some(usage) = &tally.usage {
        metrics::counter!("clara_llm_tokens_total", "direction" => "input")
            .increment(u64::from(usage.input_tokens));
        metrics::counter!("clara_llm_tokens_total", "direction" => "output")
            .increment(u64::from(usage.output_tokens));
    }
    metrics::counter!("clara_tool_calls_total").increment(tally.tool_calls as u64);
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

async fn answer(
    provider: &dyn ChatProvider,
    mut request: ChatRequest,
    tools: Option<&ReplyTools>,
    queue: &mut SendQueue,
    tally: &mut Tally,
) -> Result<(), LlmError> {
    queue.typing().await;
    let max_rounds = tools.map_or(0, |t| t.max_rounds);
    let mut said = String::new();
    for round in 0..=max_rounds {
        // The last round offers no tools, so the model has to answer.
        request.tools = match tools {
            Some(t) if round < max_rounds => t.registry.specs(),
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
        // Independent calls of one round run at once.
        let outcomes = futures::future::join_all(
            calls
                .iter()
                .map(|call| tools.registry.run(call, &tools.context)),
        )
        .await;
        tally.tool_calls += calls.len();
        request
            .messages
            .push(ChatMessage::tool_request(text, calls));
        for outcome in outcomes {
            tracing::debug!(tool = %outcome.name, ok = outcome.ok, "tool finished");
            queue.tool_finished(&outcome.name, outcome.ok).await;
            request
                .messages
                .push(ChatMessage::tool_result(outcome.call_id, outcome.content));
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

/// One model call: streams its text to the queue, returns the text and the tool
/// calls it made.
async fn stream_round(
    provider: &dyn ChatProvider,
    request: ChatRequest,
    queue: &mut SendQueue,
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
