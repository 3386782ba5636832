//! The worker's side: thoughts from the consumer group, answered with this
//! process's [`Brain`], reply steps back to the gateway that queued them.

use super::wire::{Envelope, Step, WorkerEvent, decode};
use super::{
    BLOCK, Connector, DONE_TTL_SECS, GROUP, QueueError, REPLY_STREAM_TTL_SECS, RedisConfig,
    backoff, ensure_group, is_no_group,
};
use crate::brain::{Brain, ReplyOutput, Spent};
use async_trait::async_trait;
use clara_core::{ThoughtId, ToolRun};
use futures::StreamExt;
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

/// How long a stopping worker lets the thoughts it holds finish; the rest are
/// claimed by other workers.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A worker's settings.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Redis.
    pub redis: RedisConfig,
    /// This worker's name in the consumer group (unique per process).
    pub name: String,
    /// Thoughts answered at once.
    pub concurrency: usize,
}

/// A `clara worker`: answers thoughts from the queue until stopped.
pub struct Worker {
    shared: Arc<Shared>,
}

struct Shared {
    brain: Brain,
    config: WorkerConfig,
    connector: Connector,
    conn: ConnectionManager,
    /// The thoughts being answered here, to cancel.
    held: Mutex<HashMap<ThoughtId, CancellationToken>>,
    permits: Arc<Semaphore>,
}

impl Worker {
    /// Connects to Redis and joins the workers' group.
    pub async fn connect(brain: Brain, config: WorkerConfig) -> Result<Self, QueueError> {
        let connector = Connector::new(&config.redis.url)?;
        let mut conn = connector.manager().await?;
        ensure_group(&mut conn, &config.redis.thoughts())
            .await
            .map_err(|e| connector.error(e))?;
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        Ok(Self {
            shared: Arc::new(Shared {
                brain,
                config,
                connector,
                conn,
                held: Mutex::new(HashMap::new()),
                permits,
            }),
        })
    }

    /// Answers thoughts until `stop`, then gives the ones it holds a moment to
    /// finish.
    pub async fn run(self, stop: CancellationToken) {
        let shared = self.shared;
        let listener = tokio::spawn(listen_for_cancels(Arc::clone(&shared), stop.clone()));
        let claimer = tokio::spawn(claim_abandoned(Arc::clone(&shared), stop.clone()));
        read_new(Arc::clone(&shared), stop).await;
        claimer.abort();
        listener.abort();
        let all = u32::try_from(shared.config.concurrency.max(1)).unwrap_or(u32::MAX);
        if tokio::time::timeout(STOP_GRACE, shared.permits.acquire_many(all))
            .await
            .is_err()
        {
            tracing::warn!("stopping with thoughts unanswered; other workers will take them");
            return;
        }
        // Everything held was answered: leave the group, so consumers of
        // stopped workers do not pile up. A consumer that still holds entries
        // (a read cut short by the stop) must stay: deleting it would drop
        // them, and other workers take them over from it.
        let mut conn = shared.conn.clone();
        let held: redis::RedisResult<Vec<redis::Value>> = redis::cmd("XPENDING")
            .arg(shared.config.redis.thoughts())
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(&shared.config.name)
            .query_async(&mut conn)
            .await;
        if !matches!(held, Ok(ref entries) if entries.is_empty()) {
            return;
        }
        let _: redis::RedisResult<u64> = redis::cmd("XGROUP")
            .arg("DELCONSUMER")
            .arg(shared.config.redis.thoughts())
            .arg(GROUP)
            .arg(&shared.config.name)
            .query_async(&mut conn)
            .await;
    }
}

/// Reads new thoughts for this worker, as many as it has room for.
async fn read_new(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let stream = config.redis.thoughts();
    let mut conn = None;
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        // Read as many as there is room for, without holding the room while
        // blocked: the claimer needs it too.
        let room = shared.permits.available_permits();
        if room == 0 {
            tokio::select! {
                () = stop.cancelled() => return,
                permit = shared.permits.acquire() => match permit {
                    Ok(permit) => drop(permit),
                    Err(_) => return,
                },
            }
            continue;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match shared.connector.blocking().await {
                Ok(c) => c,
                Err(error) => {
                    failures += 1;
                    if failures == 1 {
                        tracing::warn!(%error, "cannot reach Redis; retrying");
                    }
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
            },
        };
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(GROUP)
            .arg(&config.name)
            .arg("COUNT")
            .arg(room)
            .arg("BLOCK")
            .arg(BLOCK.as_millis() as u64)
            .arg("STREAMS")
            .arg(&stream)
            .arg(">");
        let read = cmd.query_async::<Option<StreamReadReply>>(&mut c);
        let read = tokio::select! {
            () = stop.cancelled() => return,
            read = read => read,
        };
        match read {
            Ok(reply) => {
                if failures > 0 {
                    tracing::info!("reconnected to Redis");
                    failures = 0;
                }
                for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
                    let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else {
                        return;
                    };
                    tokio::spawn(answer(Arc::clone(&shared), entry, permit));
                }
                conn = Some(c);
            }
            Err(error) if is_no_group(&error) => {
                // Redis restarted empty: the group is recreated; thoughts queued
                // since are read from the start of the stream.
                let mut m = shared.conn.clone();
                if let Err(error) = ensure_group(&mut m, &stream).await {
                    tracing::warn!(%error, "cannot recreate the workers' group");
                    tokio::time::sleep(backoff(1)).await;
                }
                conn = Some(c);
            }
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(error = %shared.connector.error(error), "lost Redis; reconnecting");
                }
                tokio::time::sleep(backoff(failures)).await;
            }
        }
    }
}

/// Takes over thoughts whose worker stopped heart-beating them.
async fn claim_abandoned(shared: Arc<Shared>, stop: CancellationToken) {
    let config = &shared.config;
    let every = (config.redis.claim_idle / 2).max(Duration::from_millis(50));
    let min_idle = u64::try_from(config.redis.claim_idle.as_millis()).unwrap_or(u64::MAX);
    let mut conn = shared.conn.clone();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let room = shared.permits.available_permits().min(16);
        if room == 0 {
            continue;
        }
        let claimed = redis::cmd("XAUTOCLAIM")
            .arg(config.redis.thoughts())
            .arg(GROUP)
            .arg(&config.name)
            .arg(min_idle)
            .arg("0-0")
            .arg("COUNT")
            .arg(room)
            .query_async::<StreamAutoClaimReply>(&mut conn)
            .await;
        match claimed {
            Ok(reply) => {
                for entry in reply.claimed {
                    let Ok(permit) = Arc::clone(&shared.permits).acquire_owned().await else {
                        return;
                    };
                    tracing::info!(entry = %entry.id, "taking over a thought from a worker that stopped");
                    tokio::spawn(answer(Arc::clone(&shared), entry, permit));
                }
            }
            Err(error) if is_no_group(&error) => {}
            Err(error) => tracing::debug!(%error, "cannot look for abandoned thoughts"),
        }
    }
}

/// Cancels held thoughts as gateways announce them.
async fn listen_for_cancels(shared: Arc<Shared>, stop: CancellationToken) {
    let channel = shared.config.redis.cancel_channel();
    let mut failures = 0u32;
    while !stop.is_cancelled() {
        let mut pubsub = match shared.connector.pubsub().await {
            Ok(p) => p,
            Err(error) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(%error, "cannot listen for cancellations; retrying");
                }
                tokio::time::sleep(backoff(failures)).await;
                continue;
            }
        };
        if let Err(error) = pubsub.subscribe(&channel).await {
            failures += 1;
            tracing::warn!(%error, "cannot subscribe to cancellations; retrying");
            tokio::time::sleep(backoff(failures)).await;
            continue;
        }
        failures = 0;
        let mut messages = pubsub.on_message();
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return,
                m = messages.next() => m,
            };
            let Some(message) = message else { break };
            let Ok(thought) = message
                .get_payload::<String>()
                .map_err(|_| ())
                .and_then(|p| p.parse::<ThoughtId>().map_err(|_| ()))
            else {
                continue;
            };
            if let Some(token) = shared.held.lock().get(&thought) {
                tracing::debug!(%thought, "cancelled by the gateway");
                token.cancel();
            }
        }
    }
}

/// Answers one thought from the stream.
async fn answer(shared: Arc<Shared>, entry: StreamId, _permit: OwnedSemaphorePermit) {
    let redis = &shared.config.redis;
    let mut conn = shared.conn.clone();
    let Some(Envelope { reply_to, job }) = decode(&entry) else {
        tracing::error!(entry = %entry.id, "a malformed job on the queue; dropped");
        acknowledge(&shared, &entry.id).await;
        return;
    };
    let thought = job.thought.id;
    let token = CancellationToken::new();
    shared.held.lock().insert(thought, token.clone());
    let _held = Held {
        shared: Arc::clone(&shared),
        thought,
    };
    // Answered already (its worker died before acknowledging), or cancelled
    // before it started.
    let marks: redis::RedisResult<(bool, bool)> = redis::pipe()
        .exists(redis.done(&thought))
        .exists(redis.cancelled(&thought))
        .query_async(&mut conn)
        .await;
    if let Ok((done, cancelled)) = marks
        && (done || cancelled)
    {
        acknowledge(&shared, &entry.id).await;
        return;
    }
    let heartbeat = tokio::spawn(heartbeat(Arc::clone(&shared), entry.id.clone()));
    let mut out = StepSender::start(conn.clone(), shared.connector.clone(), reply_to, thought);
    let mut spent = Spent::default();
    let result = {
        let work = shared.brain.answer(job, &mut out, &mut spent);
        tokio::select! {
            biased;
            () = token.cancelled() => None,
            result = work => Some(result),
        }
    };
    heartbeat.abort();
    let answered = result.is_some();
    match result {
        None => tracing::debug!(%thought, "stopped: cancelled"),
        Some(Ok(())) => out.send(Step::Finished { spent }).await,
        Some(Err(error)) => {
            tracing::warn!(%thought, %error, "reply failed");
            out.send(Step::Failed {
                message: error.user_message(),
                spent,
            })
            .await;
        }
    }
    out.flush().await;
    // Marked done and acknowledged in one round trip, once the steps are in.
    let mut pipe = redis::pipe();
    if answered {
        pipe.cmd("SET")
            .arg(redis.done(&thought))
            .arg(1)
            .arg("NX")
            .arg("EX")
            .arg(DONE_TTL_SECS)
            .ignore();
    }
    pipe.cmd("XACK")
        .arg(redis.thoughts())
        .arg(GROUP)
        .arg(&entry.id)
        .ignore();
    if pipe.query_async::<()>(&mut conn).await.is_err() {
        // Retried on its own; a thought left unacknowledged is found done.
        acknowledge(&shared, &entry.id).await;
    }
}

/// Keeps a held entry's idle time near zero, so it is not taken over.
async fn heartbeat(shared: Arc<Shared>, entry: String) {
    let config = &shared.config;
    let mut conn = shared.conn.clone();
    loop {
        tokio::time::sleep(config.redis.heartbeat()).await;
        let _: redis::RedisResult<redis::Value> = redis::cmd("XCLAIM")
            .arg(config.redis.thoughts())
            .arg(GROUP)
            .arg(&config.name)
            .arg(0)
            .arg(&entry)
            .arg("JUSTID")
            .query_async(&mut conn)
            .await;
    }
}

async fn acknowledge(shared: &Shared, entry: &str) {
    let mut conn = shared.conn.clone();
    for failures in 0..5 {
        let acked: redis::RedisResult<()> = redis::cmd("XACK")
            .arg(shared.config.redis.thoughts())
            .arg(GROUP)
            .arg(entry)
            .query_async(&mut conn)
            .await;
        match acked {
            Ok(()) => return,
            Err(error) if is_no_group(&error) => return,
            Err(_) => tokio::time::sleep(backoff(failures)).await,
        }
    }
    tracing::warn!(
        entry,
        "cannot acknowledge a thought; it will be checked again as answered"
    );
}

/// Forgets a held thought when its answer ends.
struct Held {
    shared: Arc<Shared>,
    thought: ThoughtId,
}

impl Drop for Held {
    fn drop(&mut self) {
        self.shared.held.lock().remove(&self.thought);
    }
}

/// Sends a reply's steps to the gateway's reply stream, in order, without
/// making the model wait for Redis: steps queue for a sender task that writes
/// whatever has gathered in one pipelined round trip.
struct StepSender {
    steps: mpsc::Sender<Step>,
    task: tokio::task::JoinHandle<()>,
}

/// Steps that may wait for Redis before the model is slowed down.
const STEPS_QUEUED: usize = 1_024;
/// Steps written in one round trip at most.
const STEPS_PER_WRITE: usize = 64;

impl StepSender {
    fn start(
        conn: ConnectionManager,
        connector: Connector,
        stream: String,
        thought: ThoughtId,
    ) -> Self {
        let (steps, rx) = mpsc::channel(STEPS_QUEUED);
        let attempt = uuid::Uuid::new_v4().simple().to_string();
        let task = tokio::spawn(write_steps(rx, conn, connector, stream, thought, attempt));
        Self { steps, task }
    }

    async fn send(&mut self, step: Step) {
        // The writer ends only when this sender is dropped.
        let _ = self.steps.send(step).await;
    }

    /// Waits until every step sent is in Redis.
    async fn flush(self) {
        drop(self.steps);
        let _ = self.task.await;
    }
}

/// Writes queued steps, batched, retrying through a Redis outage: each step is
/// part of what the person must get.
async fn write_steps(
    mut rx: mpsc::Receiver<Step>,
    mut conn: ConnectionManager,
    connector: Connector,
    stream: String,
    thought: ThoughtId,
    attempt: String,
) {
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, STEPS_PER_WRITE).await > 0 {
        let mut pipe = redis::pipe();
        for step in batch.drain(..) {
            let event = WorkerEvent {
                thought,
                attempt: attempt.clone(),
                step,
            };
            let Ok(json) = serde_json::to_string(&event) else {
                continue;
            };
            pipe.add_command(super::append(&stream, &json)).ignore();
        }
        // A stream whose gateway is gone expires instead of staying forever.
        pipe.cmd("EXPIRE")
            .arg(&stream)
            .arg(REPLY_STREAM_TTL_SECS)
            .ignore();
        let mut failures = 0;
        loop {
            match pipe.query_async::<()>(&mut conn).await {
                Ok(()) => break,
                Err(error) => {
                    if failures == 0 {
                        tracing::warn!(error = %connector.error(error), "cannot send reply steps; retrying");
                    }
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                }
            }
        }
    }
}

#[async_trait]
impl ReplyOutput for StepSender {
    async fn typing(&mut self) {
        self.send(Step::Typing).await;
    }
    async fn push(&mut self, delta: &str) {
        self.send(Step::Delta {
            text: delta.to_owned(),
        })
        .await;
    }
    async fn tool_started(&mut self, name: &str) {
        self.send(Step::ToolStarted {
            name: name.to_owned(),
        })
        .await;
    }
    async fn tool_finished(&mut self, run: &ToolRun) {
        self.send(Step::ToolFinished { run: run.clone() }).await;
    }
    async fn tool_progress(&mut self, name: &str, text: &str) {
        self.send(Step::ToolProgress {
            name: name.to_owned(),
            text: text.to_owned(),
        })
        .await;
    }
    async fn file(&mut self, file: clara_core::FileBlob, caption: Option<String>) {
        self.send(Step::File { file, caption }).await;
    }
}
