//! The seams between Clara and a platform adapter.
//!
//! An adapter sees Clara as an [`Assistant`]: it hands over messages and
//! controls. Clara sees the adapter as an [`OutboundSink`]: the platform calls
//! the send queue asks for. In one process the engine is the `Assistant`; an
//! adapter in another process reaches the same contract through the gateway
//! protocol's client. Neither side needs to know which it is talking to.
//!
//! A platform plugs in as a [`Platform`]: its settings (a
//! [`Component`](crate::component::Component)) become an [`Adapter`], which
//! gives its sink, any [webhook routes](crate::webhook) it needs on the gateway
//! port, and its loop. `clara serve` and `clara adapter NAME` run every adapter
//! through this one trait.

use crate::component::{Component, ConfigError};
use crate::pacing::Delivery;
use crate::webhook::WebhookRoute;
use crate::{ApprovalAnswer, Author, ConversationRef, EventId, Inbound, Outbound};
use async_trait::async_trait;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

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

    /// `author` pressed an approval button in `conversation` (`event` is the
    /// platform's id of the press, for dedupe). The default hands it over as the
    /// typed command it stands for (`/approve 3f9a2c1d`), which Clara reads
    /// before any model does; only an owner's answer in a direct conversation
    /// counts, and Clara says so either way.
    async fn answer_approval(
        &self,
        conversation: &ConversationRef,
        author: &Author,
        answer: ApprovalAnswer,
        event: EventId,
    ) -> Result<Accepted, IngressError> {
        self.submit(Inbound {
            event_id: event,
            conversation: conversation.clone(),
            author: author.clone(),
            text: format!("/{} {}", answer.verdict.as_str(), answer.id),
            sent_at_ms: 0,
            tier: None,
            images: Vec::new(),
            files: Vec::new(),
            replying_to: Vec::new(),
        })
        .await
    }
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

/// A platform adapter, configured and ready to run.
#[async_trait]
pub trait Adapter: Send + 'static {
    /// The platform's name in conversations and event ids (`telegram`).
    fn platform(&self) -> &'static str;

    /// Where Clara's replies for this platform go; attached before [`Adapter::run`].
    fn sink(&self) -> Arc<dyn OutboundSink>;

    /// HTTP routes the platform calls (webhooks), served on the gateway port
    /// under `/webhooks/{platform}/`. Most adapters poll or hold a socket and
    /// need none.
    fn webhooks(&self) -> Vec<WebhookRoute> {
        Vec::new()
    }

    /// Reads the platform and hands messages to `assistant` until `shutdown`
    /// fires. Network trouble is waited out; it returns an error only when the
    /// platform refuses the adapter for good (a revoked token).
    async fn run(
        self: Box<Self>,
        assistant: Arc<dyn Assistant>,
        shutdown: CancellationToken,
    ) -> Result<(), AdapterError>;
}

/// Why an adapter stopped: one sentence for the operator, without secrets.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AdapterError(pub String);

impl AdapterError {
    /// An error with this sentence.
    pub fn new(sentence: impl std::fmt::Display) -> Self {
        Self(sentence.to_string())
    }
}

/// A platform Clara can talk on: a component whose settings make an adapter.
pub trait Platform: Component {
    /// The adapter these settings describe; `None` when they do not enable the
    /// platform (no token). Checks every value, so a typo stops start-up with
    /// the key named, but makes no network call.
    fn adapter(settings: Self::Settings) -> Result<Option<Box<dyn Adapter>>, ConfigError>;
}
