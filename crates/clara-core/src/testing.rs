//! Test doubles every crate's tests share (feature `testing`; never in a
//! production build): a [`RecordingSink`] that records every platform call, a
//! [`RecordingAssistant`] that records what an adapter hands over, an
//! [`EndSink`] for benchmarks, and a [`fast_chunker`] for tests of the
//! conversation path.

use crate::chunker::ChunkerConfig;
use crate::pacing::{Delivery, DeliveryMode};
use crate::port::{Accepted, Assistant, IngressError, OutboundSink, SinkError};
use crate::{Author, ConversationRef, Inbound, Outbound, ThoughtId};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How long the `wait_until`s wait before they fail the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// A chunker that answers a burst 150 ms after its last message, so tests of
/// the conversation path run fast (the defaults wait 1.5 s).
pub fn fast_chunker() -> ChunkerConfig {
    ChunkerConfig {
        quiet: Duration::from_millis(150),
        quiet_when_complete: Duration::from_millis(100),
        quiet_when_continuing: Duration::from_millis(200),
        typing_grace: Duration::from_millis(300),
        max_wait: Duration::from_secs(2),
        max_parts: 20,
    }
}

/// What a double saw, in order, and a way to wait for what a test expects.
struct Record<T> {
    items: Mutex<Vec<T>>,
    changed: Notify,
}

impl<T: Clone + std::fmt::Debug> Record<T> {
    fn new() -> Self {
        Self {
            items: Mutex::new(Vec::new()),
            changed: Notify::new(),
        }
    }

    fn push(&self, item: T) {
        self.items.lock().push(item);
        self.changed.notify_waiters();
    }

    fn all(&self) -> Vec<T> {
        self.items.lock().clone()
    }

    /// Waits until `view` of the items satisfies `pred`; panics after [`WAIT`].
    async fn wait_until<V: std::fmt::Debug>(
        &self,
        what: &str,
        view: impl Fn(Vec<T>) -> V,
        pred: impl Fn(&V) -> bool,
    ) -> V {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let seen = view(self.all());
            if pred(&seen) {
                return seen;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; so far: {seen:#?}");
            }
        }
    }
}

/// Records every platform call; `Send` returns ids "m1", "m2", ….
pub struct RecordingSink {
    delivery: Delivery,
    calls: Record<(ConversationRef, Outbound)>,
    next_id: AtomicU64,
}

impl RecordingSink {
    /// A sink of this delivery mode and message length.
    pub fn new(mode: DeliveryMode, max_chars: usize) -> Arc<Self> {
        Arc::new(Self {
            delivery: Delivery { mode, max_chars },
            calls: Record::new(),
            next_id: AtomicU64::new(1),
        })
    }

    /// A sink that takes streamed text of any length.
    pub fn streaming() -> Arc<Self> {
        Self::new(DeliveryMode::Stream, usize::MAX)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Outbound> {
        without_conversations(self.calls.all())
    }

    /// Every call so far, with the conversation it was for.
    pub fn calls_with_conversations(&self) -> Vec<(ConversationRef, Outbound)> {
        self.calls.all()
    }

    /// Waits until the recorded calls satisfy `pred`; panics after [`WAIT`],
    /// showing the calls.
    pub async fn wait_until(
        &self,
        what: &str,
        pred: impl Fn(&[Outbound]) -> bool,
    ) -> Vec<Outbound> {
        self.calls
            .wait_until(what, without_conversations, |calls| pred(calls))
            .await
    }

    /// The text streamed for `thought` (deltas joined).
    pub fn streamed(&self, thought: ThoughtId) -> String {
        self.calls()
            .iter()
            .filter_map(|c| match c {
                Outbound::Delta { thought: t, text } if *t == thought => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

#[async_trait]
impl OutboundSink for RecordingSink {
    fn delivery(&self) -> Delivery {
        self.delivery.clone()
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        let id = matches!(outbound, Outbound::Send { .. })
            .then(|| format!("m{}", self.next_id.fetch_add(1, Ordering::SeqCst)));
        self.calls.push((conversation.clone(), outbound));
        Ok(id)
    }
}

fn without_conversations(calls: Vec<(ConversationRef, Outbound)>) -> Vec<Outbound> {
    calls.into_iter().map(|(_, call)| call).collect()
}

/// Wakes the conversation (by channel) whose reply ended, and records nothing:
/// the sink of benchmarks, where a recording sink's bookkeeping would be
/// measured too.
pub struct EndSink {
    waiters: HashMap<String, Arc<Notify>>,
}

impl EndSink {
    /// A sink waking `waiters[channel]` when a reply in `channel` ends.
    pub fn new(waiters: HashMap<String, Arc<Notify>>) -> Arc<Self> {
        Arc::new(Self { waiters })
    }
}

#[async_trait]
impl OutboundSink for EndSink {
    fn delivery(&self) -> Delivery {
        Delivery {
            mode: DeliveryMode::Stream,
            max_chars: usize::MAX,
        }
    }

    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError> {
        if is_final(&outbound)
            && let Some(waiter) = self.waiters.get(&conversation.channel)
        {
            waiter.notify_one();
        }
        Ok(None)
    }
}

fn submitted(calls: Vec<AssistantCall>) -> Vec<Inbound> {
    calls
        .into_iter()
        .filter_map(|c| match c {
            AssistantCall::Submit(inbound) => Some(inbound),
            _ => None,
        })
        .collect()
}

/// Whether `call` ends a reply.
pub fn is_final(call: &Outbound) -> bool {
    matches!(
        call,
        Outbound::End { .. } | Outbound::Cancelled { .. } | Outbound::Error { .. }
    )
}

/// The deltas of `calls`, joined.
pub fn streamed(calls: &[Outbound]) -> String {
    calls
        .iter()
        .filter_map(|c| match c {
            Outbound::Delta { text, .. } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// What an adapter handed to a [`RecordingAssistant`].
#[derive(Clone, Debug, PartialEq)]
pub enum AssistantCall {
    /// A message.
    Submit(Inbound),
    /// Someone typing.
    Typing(ConversationRef, Author),
    /// A stop.
    Stop(ConversationRef, Author),
    /// A new session.
    NewSession(ConversationRef, Author),
}

/// An [`Assistant`] that accepts everything and records it, for adapter tests
/// that need no engine.
pub struct RecordingAssistant {
    calls: Record<AssistantCall>,
    /// What every submit answers from now on, when set (it is still recorded).
    refusal: Mutex<Option<IngressError>>,
}

impl RecordingAssistant {
    /// A new, empty one.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            calls: Record::new(),
            refusal: Mutex::new(None),
        })
    }

    /// Refuses every later message with `error` (recording it all the same).
    pub fn refuse_with(&self, error: IngressError) {
        *self.refusal.lock() = Some(error);
    }

    /// The messages handed over, in order.
    pub fn submitted(&self) -> Vec<Inbound> {
        submitted(self.calls())
    }

    /// Their texts.
    pub fn texts(&self) -> Vec<String> {
        self.submitted().into_iter().map(|i| i.text).collect()
    }

    /// Waits until `n` messages were handed over, and returns them.
    pub async fn wait_submitted(&self, n: usize) -> Vec<Inbound> {
        self.calls
            .wait_until(&format!("{n} submitted message(s)"), submitted, |got| {
                got.len() >= n
            })
            .await
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<AssistantCall> {
        self.calls.all()
    }

    /// Waits until the calls satisfy `pred`; panics after [`WAIT`].
    pub async fn wait_until(
        &self,
        what: &str,
        pred: impl Fn(&[AssistantCall]) -> bool,
    ) -> Vec<AssistantCall> {
        self.calls
            .wait_until(what, |calls| calls, |calls| pred(calls))
            .await
    }

    fn record(&self, call: AssistantCall) {
        self.calls.push(call);
    }
}

#[async_trait]
impl Assistant for RecordingAssistant {
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        let refusal = self.refusal.lock().clone();
        self.record(AssistantCall::Submit(inbound));
        match refusal {
            Some(error) => Err(error),
            None => Ok(Accepted::Queued),
        }
    }

    async fn typing(&self, conversation: &ConversationRef, author: &Author) {
        self.record(AssistantCall::Typing(conversation.clone(), author.clone()));
    }

    async fn stop(&self, conversation: &ConversationRef, author: &Author) {
        self.record(AssistantCall::Stop(conversation.clone(), author.clone()));
    }

    async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError> {
        self.record(AssistantCall::NewSession(
            conversation.clone(),
            author.clone(),
        ));
        Ok(())
    }
}
