//! Carrying out the gateway's platform calls through the adapter's own sink:
//! one worker task per conversation, so a conversation's calls happen in order
//! (a `send` before its `edit`s) while a slow platform call in one conversation
//! does not hold up the others, nor the connection's pings and answers — until
//! that conversation has `WORKER_QUEUE` (64) calls waiting. Then the reader waits
//! for room, which is back-pressure on the gateway (and, should the platform
//! stay stuck past the gateway's pong timeout, a reconnect) rather than
//! unbounded memory.

use crate::{ClientFrame, SendFailedFrame, SentFrame, WireConversation, encode};
use clara_core::port::{OutboundSink, SinkError};
use clara_core::{ConversationRef, Outbound};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How many calls may wait for one conversation's worker before the
/// connection's reader waits (and so, in turn, the gateway).
const WORKER_QUEUE: usize = 64;

/// How long a worker with nothing to do is kept.
const WORKER_IDLE: Duration = Duration::from_secs(60);

/// How often a call the platform rate-limits is retried here (a `send`'s
/// rate limit goes back to the gateway instead, which retries it).
const RATE_LIMIT_RETRIES: u32 = 3;

/// One platform call to make.
struct Job {
    outbound: Outbound,
    /// For a `send`: the id to answer with `sent` / `send_failed`.
    request_id: Option<u64>,
}

struct Worker {
    queue: mpsc::Sender<Job>,
    /// Calls handed over and not yet finished.
    busy: Arc<AtomicUsize>,
    last_used: Instant,
}

/// The workers of one connection. Owned by the connection's reader.
pub(crate) struct Deliveries {
    sink: Arc<dyn OutboundSink>,
    platform: String,
    /// Where `sent` / `send_failed` answers go (the connection's writer).
    answers: mpsc::Sender<String>,
    workers: HashMap<WireConversation, Worker>,
}

impl Deliveries {
    pub(crate) fn new(
        sink: Arc<dyn OutboundSink>,
        platform: String,
        answers: mpsc::Sender<String>,
    ) -> Self {
        Self {
            sink,
            platform,
            answers,
            workers: HashMap::new(),
        }
    }

    /// Hands a call to its conversation's worker, waiting while that worker's
    /// queue is full.
    pub(crate) async fn dispatch(
        &mut self,
        conversation: WireConversation,
        outbound: Outbound,
        request_id: Option<u64>,
    ) {
        let now = Instant::now();
        let worker = self.workers.entry(conversation.clone()).or_insert_with(|| {
            spawn_worker(
                Arc::clone(&self.sink),
                conversation.to_core(&self.platform),
                self.answers.clone(),
            )
        });
        worker.last_used = now;
        worker.busy.fetch_add(1, Ordering::SeqCst);
        let job = Job {
            outbound,
            request_id,
        };
        if worker.queue.send(job).await.is_err() {
            // Cannot happen while we hold the sender (workers stop only when it
            // is dropped); keep the count right regardless.
            worker.busy.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Lets workers idle for a while go; they finish what they hold first.
    pub(crate) fn retire_idle(&mut self) {
        let now = Instant::now();
        self.workers.retain(|_, w| {
            w.busy.load(Ordering::SeqCst) > 0 || now.duration_since(w.last_used) < WORKER_IDLE
        });
    }
}

fn spawn_worker(
    sink: Arc<dyn OutboundSink>,
    conversation: ConversationRef,
    answers: mpsc::Sender<String>,
) -> Worker {
    let (queue, mut jobs) = mpsc::channel::<Job>(WORKER_QUEUE);
    let busy = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&busy);
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            run(sink.as_ref(), &conversation, job, &answers).await;
            counter.fetch_sub(1, Ordering::SeqCst);
        }
    });
    Worker {
        queue,
        busy,
        last_used: Instant::now(),
    }
}

async fn run(
    sink: &dyn OutboundSink,
    conversation: &ConversationRef,
    job: Job,
    answers: &mpsc::Sender<String>,
) {
    let Some(request_id) = job.request_id else {
        let mut attempt = 0;
        loop {
            match sink.deliver(conversation, job.outbound.clone()).await {
                Ok(_) => return,
                Err(SinkError::RateLimited { retry_after_ms }) if attempt < RATE_LIMIT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(retry_after_ms)).await;
                }
                Err(error) => {
                    tracing::warn!(platform = %conversation.platform, %error, "a platform call failed");
                    return;
                }
            }
        }
    };
    let answer = match sink.deliver(conversation, job.outbound).await {
        Ok(message_id) => ClientFrame::Sent(SentFrame {
            request_id,
            message_id: message_id.unwrap_or_default(),
        }),
        Err(SinkError::RateLimited { retry_after_ms }) => {
            ClientFrame::SendFailed(SendFailedFrame {
                request_id,
                reason: "the platform is rate limiting".to_owned(),
                retry_after_ms: Some(retry_after_ms),
            })
        }
        Err(SinkError::Failed(reason)) => ClientFrame::SendFailed(SendFailedFrame {
            request_id,
            reason,
            retry_after_ms: None,
        }),
    };
    // The connection may be gone by now; the gateway then fails the send itself.
    let _ = answers.send(encode(&answer)).await;
}
