//! The group-commit message writer.
//!
//! SQLite commits one transaction at a time and each commit costs a WAL write, so
//! one transaction per message caps throughput at a few thousand messages a
//! second. The writer is one task that takes everything queued (up to
//! [`MAX_BATCH`] messages) and commits it in one transaction, then loops. There is
//! no timer: under light load a message is committed as soon as it arrives, and
//! under heavy load batches grow by themselves while the previous commit runs.

use crate::StoreError;
use crate::backend::{Db, Pools};
use crate::messages::{NewMessage, insert_messages};
use clara_core::backoff::Backoff;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Messages that may wait in the queue; `append` waits for room beyond this, so
/// memory stays bounded when the disk cannot keep up.
pub const QUEUE_CAPACITY: usize = 8192;

/// The most messages committed in one transaction.
pub const MAX_BATCH: usize = 512;

/// The wait before retrying a commit the database was too busy (or gone) for:
/// 5 ms doubling up to half a second.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(5), Duration::from_millis(500));

type Reply = oneshot::Sender<Result<(), StoreError>>;

// `Flush` is rare; boxing the message would cost every message an allocation.
#[allow(clippy::large_enum_variant)]
enum Command {
    Append(NewMessage, Reply),
    Flush(Reply),
}

/// A cheap-to-clone handle to the task that writes messages in group commits.
///
/// **Durability:** when a [`Durable`] resolves to `Ok`, the message's transaction
/// has committed. The database runs in WAL mode with `synchronous=NORMAL`, so a
/// committed transaction survives a crash of the process; only an operating-system
/// crash or power loss can lose the last commits (the file stays consistent).
///
/// Messages are committed in the order they were appended, so the messages of one
/// conversation keep their order. A database that is busy or locked by another
/// process, or a PostgreSQL server that drops its connections or restarts, delays
/// commits but never loses an accepted message: the writer retries the batch with
/// a short backoff until it succeeds. A retried batch whose first commit did
/// happen (the connection died while confirming it) is harmless: messages already
/// stored are skipped by id.
///
/// On PostgreSQL a committed transaction is on the server's disk
/// (`synchronous_commit` permitting) before the [`Durable`] resolves.
#[derive(Clone, Debug)]
pub struct MessageWriter {
    queue: mpsc::Sender<Command>,
}

impl MessageWriter {
    /// Starts the writer task on the current tokio runtime. The task ends when the
    /// last handle is dropped.
    pub(crate) fn spawn(pools: Pools, db: Db) -> MessageWriter {
        let (queue, commands) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(run(pools, db, commands));
        MessageWriter { queue }
    }

    /// Queues a message and returns once it is queued (waiting only while the queue
    /// is full). Await the returned [`Durable`] to know it is committed, or drop it
    /// to fire and forget.
    pub async fn append(&self, message: NewMessage) -> Durable {
        let (reply, done) = oneshot::channel();
        if let Err(mpsc::error::SendError(Command::Append(_, reply) | Command::Flush(reply))) =
            self.queue.send(Command::Append(message, reply)).await
        {
            let _ = reply.send(Err(StoreError::WriterStopped));
        }
        Durable { done }
    }

    /// Resolves when every message appended before this call has been written.
    ///
    /// Returns the first error among the messages that failed since the previous
    /// flush, if any (each of those messages' [`Durable`] got its error too).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send(Command::Flush(reply))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        Durable { done }.await
    }
}

/// Resolves once its message is committed (or could not be). The message is
/// written whether or not this is awaited.
#[derive(Debug)]
pub struct Durable {
    done: oneshot::Receiver<Result<(), StoreError>>,
}

impl Future for Durable {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.done)
            .poll(cx)
            .map(|r| r.unwrap_or(Err(StoreError::WriterStopped)))
    }
}

async fn run(pools: Pools, db: Db, mut commands: mpsc::Receiver<Command>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut messages = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    // The first failure since the last flush, reported to that flush.
    let mut unreported: Option<StoreError> = None;
    while commands.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let mut flushes = Vec::new();
        for command in batch.drain(..) {
            match command {
                Command::Append(message, reply) => {
                    messages.push(message);
                    waiters.push(reply);
                }
                Command::Flush(reply) => flushes.push(reply),
            }
        }
        // Flushes in this batch come after some of its appends, so they resolve
        // after the whole batch is committed.
        if let Err(e) = commit(&pools, &db, &messages, &mut waiters).await {
            unreported.get_or_insert(e);
        }
        messages.clear();
        for flush in flushes {
            let _ = flush.send(unreported.take().map_or(Ok(()), Err));
        }
    }
    tracing::debug!(db = %db, "message writer stopped");
}

/// Commits a batch and resolves its waiters. When the batch fails for a reason
/// other than a lock or a lost connection, the messages are retried one by one so
/// that one bad message (say, an unknown session) does not take the others down
/// with it.
async fn commit(
    pools: &Pools,
    db: &Db,
    messages: &[NewMessage],
    waiters: &mut Vec<Reply>,
) -> Result<(), StoreError> {
    if messages.is_empty() {
        return Ok(());
    }
    let result = insert_until_not_busy(pools, db, messages).await;
    match result {
        Ok(()) => {
            for waiter in waiters.drain(..) {
                let _ = waiter.send(Ok(()));
            }
            Ok(())
        }
        Err(batch_error) if messages.len() > 1 => {
            tracing::warn!(db = %db, error = %batch_error, size = messages.len(), "message batch failed; writing its messages one by one");
            let mut first_error = None;
            for (message, waiter) in messages.iter().zip(waiters.drain(..)) {
                let result = insert_until_not_busy(pools, db, std::slice::from_ref(message)).await;
                if let Err(e) = &result {
                    tracing::error!(db = %db, error = %e, message = %message.id, "message not stored");
                    first_error.get_or_insert_with(|| e.clone());
                }
                let _ = waiter.send(result);
            }
            first_error.map_or(Ok(()), Err)
        }
        Err(e) => {
            tracing::error!(db = %db, error = %e, "message not stored");
            for waiter in waiters.drain(..) {
                let _ = waiter.send(Err(e.clone()));
            }
            Err(e)
        }
    }
}

/// Inserts, retrying for as long as the database is busy, locked or unreachable:
/// an accepted message must not be lost because another process holds the lock
/// for a while or the server is restarting.
async fn insert_until_not_busy(
    pools: &Pools,
    db: &Db,
    messages: &[NewMessage],
) -> Result<(), StoreError> {
    let mut retries = 0u32;
    loop {
        match insert_messages(pools, db, messages).await {
            Err(e) if e.is_transient() => {
                retries += 1;
                if retries == 1 || retries.is_multiple_of(20) {
                    tracing::warn!(db = %db, error = %e, retries, pending = messages.len(), "database busy or unreachable; retrying the message commit");
                }
                tokio::time::sleep(BACKOFF.delay(retries)).await;
            }
            other => {
                if retries > 0 && other.is_ok() {
                    tracing::info!(
                        db = %db,
                        retries,
                        "message commit succeeded after the database was busy or unreachable"
                    );
                }
                return other;
            }
        }
    }
}
