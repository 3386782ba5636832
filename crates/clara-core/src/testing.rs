//! Test doubles every crate's tests share (feature `testing`; never in a
//! production build): a [`RecordingSink`] that records every platform call, and
//! a [`RecordingAssistant`] that records what an adapter hands over.

#![allow(clippy::expect_used)]

use crate::pacing::{Delivery, DeliveryMode};
use crate::port::{Accepted, Assistant, IngressError, OutboundSink, SinkError};
use crate::{Author, ConversationRef, Inbound, Outbound, ThoughtId};
use async_trait::async_trait;
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// How long the `wait_until`s wait before they fail the test.
pub const WAIT: Duration = Duration::from_secs(10);

/// Records every platform call; `Send` returns ids "m1", "m2", ….
pub struct RecordingSink {
    delivery: Delivery,
    calls: Mutex<Vec<(ConversationRef, Outbound)>>,
    changed: Notify,
    next_id: AtomicU64,
}

impl RecordingSink {
    /// A sink of this delivery mode and message length.
    pub fn new(mode: DeliveryMode, max_chars: usize) -> Arc<Self> {
        Arc::new(Self {
            delivery: Delivery { mode, max_chars },
            calls: Mutex::new(Vec::new()),
            changed: Notify::new(),
            next_id: AtomicU64::new(1),
        })
    }

    /// A sink that takes streamed text of any length.
    pub fn streaming() -> Arc<Self> {
        Self::new(DeliveryMode::Stream, usize::MAX)
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Outbound> {
        self.calls.lock().iter().map(|(_, c)| c.clone()).collect()
    }

    /// Every call so far, with the conversation it was for.
    pub fn calls_with_conversations(&self) -> Vec<(ConversationRef, Outbound)> {
        self.calls.lock().clone()
    }

    /// Waits until the recorded calls satisfy `pred`; panics after [`WAIT`],
    /// showing the calls.
    pub async fn wait_until(
        &self,
        what: &str,
        pred: impl Fn(&[Outbound]) -> bool,
    ) -> Vec<Outbound> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; calls so far: {calls:#?}");
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
        self.calls.lock().push((conversation.clone(), outbound));
        self.changed.notify_waiters();
        Ok(id)
    }
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
#[derive(Default)]
pub struct RecordingAssistant {
    calls: Mutex<Vec<AssistantCall>>,
    changed: Notify,
}

impl RecordingAssistant {
    /// A new, empty one.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<AssistantCall> {
        self.calls.lock().clone()
    }

    /// Waits until the calls satisfy `pred`; panics after [`WAIT`].
    pub async fn wait_until(
        &self,
        what: &str,
        pred: impl Fn(&[AssistantCall]) -> bool,
    ) -> Vec<AssistantCall> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let notified = self.changed.notified();
            let calls = self.calls();
            if pred(&calls) {
                return calls;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {what}; calls so far: {calls:#?}");
            }
        }
    }

    fn record(&self, call: AssistantCall) {
        self.calls.lock().push(call);
        self.changed.notify_waiters();
    }
}

#[async_trait]
impl Assistant for RecordingAssistant {
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError> {
        self.record(AssistantCall::Submit(inbound));
        Ok(Accepted::Queued)
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
