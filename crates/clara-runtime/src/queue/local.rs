//! The embedded deployment's queue: the reply runs in this process, in the
//! actor's reply task.

use super::ReplyQueue;
use crate::brain::{Brain, ReplyJob, ReplyOutcome, run_reply};
use crate::send_queue::SendQueue;
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

/// Answers with a [`Brain`] of this process.
pub struct LocalQueue {
    brain: Brain,
}

impl LocalQueue {
    /// A queue answering with `brain`.
    pub fn new(brain: Brain) -> Self {
        Self { brain }
    }
}

#[async_trait]
impl ReplyQueue for LocalQueue {
    async fn run(
        &self,
        job: ReplyJob,
        queue: SendQueue,
        cancel: CancellationToken,
    ) -> ReplyOutcome {
        run_reply(&self.brain, job, queue, cancel).await
    }
}
