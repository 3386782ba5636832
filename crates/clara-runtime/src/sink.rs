//! Where replies go: the one thing an adapter implements for the engine.

use async_trait::async_trait;
use clara_core::pacing::Delivery;
use clara_core::{ConversationRef, Outbound};

/// A platform's outgoing side.
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
