//! The queue between conversation actors and the brain.
//!
//! An actor turns a thought into a [`ReplyJob`] and hands it, with the send queue
//! that delivers the answer, to a [`ReplyQueue`]. The embedded deployment
//! answers in this process ([`LocalQueue`]); the distributed one puts the job on
//! a Redis Stream for a worker and feeds the worker's reply events back into the
//! send queue (`redis`, feature `redis`). Either way the actor sees the same
//! [`ReplyOutcome`], and cancelling its token stops the reply wherever it runs.

mod local;
#[cfg(feature = "redis")]
pub mod redis;

pub use local::LocalQueue;

use crate::brain::{ReplyJob, ReplyOutcome};
use crate::send_queue::SendQueue;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

/// Runs replies: in this process or on a worker.
#[async_trait]
pub trait ReplyQueue: Send + Sync + 'static {
    /// Answers `job`, delivering through `queue`, until the reply ends or
    /// `cancel` fires; then nothing more is sent for it.
    async fn run(&self, job: ReplyJob, queue: SendQueue, cancel: CancellationToken)
    -> ReplyOutcome;
}

/// Platform event ids seen by any process of a deployment.
#[async_trait]
pub trait SeenEvents: Send + Sync + 'static {
    /// Whether `event` in `conversation` is seen here for the first time (and is
    /// now recorded). When the answer cannot be had, say `true`: the store's own
    /// record of stored events is the second line of defence, and refusing a
    /// message for want of a cache would lose it.
    async fn first_time(
        &self,
        conversation: &clara_core::ConversationRef,
        event: &clara_core::EventId,
    ) -> bool;
}
