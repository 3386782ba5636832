//! The two seams between Clara and a platform adapter, in both directions.
//!
//! An adapter sees Clara as an [`Assistant`]: it hands over messages and
//! controls. Clara sees the adapter as an [`OutboundSink`]: the platform calls
//! the send queue asks for. In one process the engine is the `Assistant`; an
//! adapter in another process reaches the same contract through the gateway
//! protocol's client. Neither side needs to know which it is talking to.

use crate::pacing::Delivery;
use crate::{Author, ConversationRef, Inbound, Outbound};
use async_trait::async_trait;

/// What happened to a submitted message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Taken; it will be answered (alone or with the messages around it).
    Queued,
    /// The platform delivered this event before; ignored.
    Duplicate,
    /// A stop phrase: the reply in flight, if any, is cancelled; no answer follows.
    Stopped,
}

/// Why a message was refused. The text is one sentence fit to show the person.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IngressError {
    /// Nothing to answer.
    #[error("That message is empty, so there is nothing to answer.")]
    Empty,
    /// Over the configured limit.
    #[error(
        "That message is too long ({chars} characters; the limit is {limit}). Please shorten it or split it up."
    )]
    TooLong {
        /// Its length.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// The engine is shutting down.
    #[error("Clara is shutting down and cannot take new messages right now.")]
    Closed,
    /// Clara cannot be reached (a remote adapter lost its gateway); the message
    /// was not taken and may be offered again.
    #[error("Clara cannot be reached right now; please try again in a moment.")]
    Unavailable,
}

/// Clara, as an adapter sees her.
#[async_trait]
pub trait Assistant: Send + Sync + 'static {
    /// Hands over one message.
    async fn submit(&self, inbound: Inbound) -> Result<Accepted, IngressError>;

    /// The platform says `author` is typing in `conversation`.
    async fn typing(&self, conversation: &ConversationRef, author: &Author);

    /// Stops `author`'s reply in `conversation` (a stop button or command).
    async fn stop(&self, conversation: &ConversationRef, author: &Author);

    /// Starts a fresh session in `conversation` (a `/new` command).
    async fn new_session(
        &self,
        conversation: &ConversationRef,
        author: &Author,
    ) -> Result<(), IngressError>;
}

/// A platform's outgoing side: the one thing an adapter implements for Clara.
#[async_trait]
pub trait OutboundSink: Send + Sync + 'static {
    /// How this platform shows replies.
    fn delivery(&self) -> Delivery;

    /// Makes one platform call. For [`Outbound::Send`] it returns the platform's id
    /// of the new message, which later `Edit`s name.
    async fn deliver(
        &self,
        conversation: &ConversationRef,
        outbound: Outbound,
    ) -> Result<Option<String>, SinkError>;
}

/// A platform call that failed.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The platform asked to slow down; the call may be retried after the delay.
    #[error("the platform is rate limiting Clara; retry in {retry_after_ms} ms")]
    RateLimited {
        /// How long to wait.
        retry_after_ms: u64,
    },
    /// Any other failure, described in one sentence.
    #[error("{0}")]
    Failed(String),
}
