//! The gateway's side: thoughts onto the stream, the workers' reply steps back
//! into each conversation's send queue, cancellation out to the workers, and
//! platform event ids claimed once across gateways.

use super::assembly::{Action, ReplyAssembly};
use super::wire::{Envelope, WorkerEvent, decode};
use super::{BLOCK, CANCEL_TTL_SECS, Connector, QueueError, RedisConfig};
use crate::brain::{ReplyJob, ReplyOutcome, ReplyStatus, Spent, record_metrics};
use crate::queue::{ReplyQueue, SeenEvents};
use crate::send_queue::SendQueue;
use async_trait::async_trait;
use clara_core::{ConversationRef, EventId, ThoughtId};
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::streams::StreamReadReply;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Replies answered by `clara worker` processes through Redis.
#[derive(Clone)]
pub struct RedisQueue {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    connector: Connector,
    conn: ConnectionManager,
    reply_stream: String,
    routes: Mutex<HashMap<ThoughtId, mpsc::UnboundedSender<WorkerEvent>>>,
    /// Bumped each time the reply reader got its connection back after losing
    /// it: Redis may have restarted empty, so thoughts in flight are checked.
    reconnected: watch::Sender<u64>,
}

impl RedisQueue {
    /// Connects, creates the workers' group if needed and starts reading this
    /// gateway's reply stream until `stop`.
    pub async fn connect(config: RedisConfig, stop: CancellationToken) -> Result<Self, QueueError> {
        let connector = Connector::new(&config.url)?;
        let mut conn = connector.manager().await?;
        super::ensure_group(&mut conn, &config.thoughts())
            .await
            .map_err(|e| connector.error(e))?;
        let gateway = uuid::Uuid::now_v7().simple().to_string();
        let inner = Arc::new(Inner {
            reply_stream: config.replies(&gateway),
            config,
            connector,
            conn,
            routes: Mutex::new(HashMap::new()),
            reconnected: watch::Sender::new(0),
        });
        tokio::spawn(read_replies(Arc::clone(&inner), stop));
        Ok(Self { inner })
    }

    /// The stream this gateway's replies come back on.
    pub fn reply_stream(&self) -> &str {
        &self.inner.reply_stream
    }
}

#[async_trait]
impl ReplyQueue for RedisQueue {
    async fn run(
        &self,
        job: ReplyJob,
        mut queue: SendQueue,
        cancel: CancellationToken,
    ) -> ReplyOutcome {
        let inner = &self.inner;
        let thought = job.thought.clone();
        let started = Instant::now();
        let (tx, mut events) = mpsc::unbounded_channel();
        inner.routes.lock().insert(thought.id, tx);
        let _route = Route {
            inner: Arc::clone(inner),
            thought: thought.id,
        };
        let envelope = Envelope {
            reply_to: inner.reply_stream.clone(),
            job,
        };
        let envelope = match serde_json::to_string(&envelope) {
            Ok(json) => json,
            Err(error) => {
                tracing::error!(thought = %thought.id, %error, "cannot encode the job");
                let delivered = queue
                    .failed("Something went wrong on my side; please try again.")
                    .await;
                return outcome(
                    thought,
                    ReplyStatus::Failed,
                    delivered,
                    &mut queue,
                    Spent::default(),
                );
            }
        };
        let mut reconnected = inner.reconnected.subscribe();
        reconnected.borrow_and_update();
        let mut entry = tokio::select! {
            () = cancel.cancelled() => {
                let delivered = queue.cancelled().await;
                return outcome(thought, ReplyStatus::Cancelled, delivered, &mut queue, Spent::default());
            }
            entry = inner.add(&envelope) => entry,
        };
        let mut assembly = ReplyAssembly::new(inner.config.claim_idle);
        let mut first_token = None;
        let mut end = None;
        while end.is_none() {
            let check = assembly.next_check();
            let wake = queue.next_wake();
            let actions = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    inner.cancel_remote(thought.id);
                    end = Some((ReplyStatus::Cancelled, Spent::default(), None));
                    Vec::new()
                }
                Some(event) = events.recv() => assembly.on_event(&event.attempt, event.step, Instant::now()),
                () = sleep_until(check), if check.is_some() => assembly.on_tick(Instant::now()),
                () = sleep_until(wake.map(tokio::time::Instant::into_std)), if wake.is_some() => {
                    queue.wake().await;
                    Vec::new()
                }
                Ok(()) = reconnected.changed() => {
                    if !inner.entry_exists(&entry).await {
                        tracing::warn!(thought = %thought.id, "the queue lost this thought (Redis restarted?); queuing it again");
                        entry = inner.add(&envelope).await;
                        assembly.forget_current();
                    }
                    Vec::new()
                }
            };
            for action in actions {
                match action {
                    Action::Typing => queue.typing().await,
                    Action::Push(text) => {
                        first_token.get_or_insert_with(Instant::now);
                        queue.push(&text).await;
                    }
                    Action::ToolStarted(name) => queue.tool_started(&name).await,
                    Action::ToolFinished(run) => queue.tool_finished(&run).await,
                    Action::ToolProgress(name, text) => queue.tool_progress(&name, &text).await,
                    Action::File(file, caption) => queue.file(file, caption).await,
                    Action::Finish(spent) => end = Some((ReplyStatus::Finished, spent, None)),
                    Action::Fail(message, spent) => {
                        end = Some((ReplyStatus::Failed, spent, Some(message)));
                    }
                }
            }
        }
        let (status, mut spent, message) =
            end.unwrap_or((ReplyStatus::Failed, Spent::default(), None));
        let delivered = match status {
            ReplyStatus::Finished => queue.finish().await,
            ReplyStatus::Cancelled => queue.cancelled().await,
            ReplyStatus::Failed => {
                queue
                    .failed(
                        message
                            .as_deref()
                            .unwrap_or("Something went wrong; please try again."),
                    )
                    .await
            }
        };
        spent.first_token = first_token;
        record_metrics(status, started, first_token, &spent);
        outcome(thought, status, delivered, &mut queue, spent)
    }
}

fn outcome(
    thought: clara_core::Thought,
    status: ReplyStatus,
    delivered: String,
    queue: &mut SendQueue,
    spent: Spent,
) -> ReplyOutcome {
    ReplyOutcome {
        thought,
        status,
        delivered,
        whole_parts: queue.delivers_whole_parts(),
        spent,
        tool_runs: queue.take_tool_runs(),
    }
}

/// Removes a thought's route when its reply ends, however it ends: late steps
/// of a finished thought are dropped, which makes replies idempotent.
struct Route {
    inner: Arc<Inner>,
    thought: ThoughtId,
}

impl Drop for Route {
    fn drop(&mut self) {
        self.inner.routes.lock().remove(&self.thought);
    }
}

impl Inner {
    /// Puts the job on the thoughts stream, retrying until Redis takes it: an
    /// accepted thought waits out an outage rather than being lost.
    async fn add(&self, envelope: &str) -> String {
        let mut conn = self.conn.clone();
        let mut failures = 0;
        loop {
            let added: redis::RedisResult<String> =
                super::append(&self.config.thoughts(), envelope)
                    .query_async(&mut conn)
                    .await;
            match added {
                Ok(id) => return id,
                Err(error) => {
                    if failures == 0 {
                        tracing::warn!(error = %self.connector.error(error), "cannot queue a thought; retrying until Redis is back");
                    }
                    failures += 1;
                    tokio::time::sleep(super::backoff(failures)).await;
                }
            }
        }
    }

    /// Whether the thoughts stream still holds `entry` (it does not after Redis
    /// restarted without persistence). When Redis cannot say, assume it does.
    async fn entry_exists(&self, entry: &str) -> bool {
        let mut conn = self.conn.clone();
        let found: redis::RedisResult<redis::Value> = redis::cmd("XRANGE")
            .arg(self.config.thoughts())
            .arg(entry)
            .arg(entry)
            .query_async(&mut conn)
            .await;
        match found {
            Ok(redis::Value::Array(items)) => !items.is_empty(),
            Ok(_) => false,
            Err(_) => true,
        }
    }

    /// Tells every worker to stop answering `thought` (the one holding it stops
    /// at once), and marks it so a worker that has not started it never does.
    fn cancel_remote(&self, thought: ThoughtId) {
        let mut conn = self.conn.clone();
        let key = self.config.cancelled(&thought);
        let channel = self.config.cancel_channel();
        tokio::spawn(async move {
            for attempt in 0..5 {
                let sent: redis::RedisResult<()> = redis::pipe()
                    .cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("EX")
                    .arg(CANCEL_TTL_SECS)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(&channel)
                    .arg(thought.to_string())
                    .ignore()
                    .query_async(&mut conn)
                    .await;
                match sent {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(%thought, %error, "cannot tell the workers to cancel; retrying");
                        tokio::time::sleep(super::backoff(attempt)).await;
                    }
                }
            }
        });
    }
}

/// Reads this gateway's reply stream and hands each step to its thought's
/// reply. A step for a thought no longer waiting is dropped.
async fn read_replies(inner: Arc<Inner>, stop: CancellationToken) {
    let mut last = "0-0".to_owned();
    let mut failures = 0u32;
    let mut conn = None;
    while !stop.is_cancelled() {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match inner.connector.blocking().await {
                Ok(c) => {
                    if failures > 0 {
                        tracing::info!("reconnected to Redis");
                        inner.reconnected.send_modify(|n| *n += 1);
                        failures = 0;
                    }
                    c
                }
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(%error, "lost Redis; reconnecting");
                    }
                    tokio::time::sleep(super::backoff(failures)).await;
                    continue;
                }
            },
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT")
            .arg(512)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&inner.reply_stream)
            .arg(&last);
        let read = cmd.query_async::<Option<StreamReadReply>>(&mut c);
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = read => read,
        };
        match read {
            Ok(reply) => {
                for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                    last.clone_from(&entry.id);
                    let Some(event) = decode::<WorkerEvent>(&entry) else {
                        tracing::warn!(entry = %entry.id, "a malformed reply step; skipped");
                        continue;
                    };
                    let route = inner.routes.lock().get(&event.thought).cloned();
                    if let Some(route) = route {
                        let _ = route.send(event);
                    }
                }
                conn = Some(c);
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %inner.connector.error(error), "lost Redis while reading replies; reconnecting");
                }
                tokio::time::sleep(super::backoff(failures)).await;
            }
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}

/// Platform event ids claimed once across every gateway: `SET NX` with a TTL.
pub struct RedisSeenEvents {
    config: RedisConfig,
    conn: ConnectionManager,
}

impl RedisSeenEvents {
    /// Connects.
    pub async fn connect(config: RedisConfig) -> Result<Self, QueueError> {
        let conn = Connector::new(&config.url)?.manager().await?;
        Ok(Self { config, conn })
    }
}

#[async_trait]
impl SeenEvents for RedisSeenEvents {
    async fn first_time(&self, conversation: &ConversationRef, event: &EventId) -> bool {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.config.event(conversation, &event.0))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(self.config.event_ttl.as_secs().max(1));
        let set = cmd.query_async::<Option<String>>(&mut conn);
        match tokio::time::timeout(Duration::from_secs(1), set).await {
            Ok(Ok(set)) => set.is_some(),
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot check the event id in Redis; taking the message");
                true
            }
            Err(_) => {
                tracing::warn!("Redis is slow to check an event id; taking the message");
                true
            }
        }
    }
}
