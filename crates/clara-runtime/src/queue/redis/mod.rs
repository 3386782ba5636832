//! The distributed deployment's queue, on Redis.
//!
//! - Thoughts go to one stream (`{prefix}:thoughts`) read by the consumer group
//!   `workers`. A worker heart-beats the entries it holds (an `XCLAIM` of its own
//!   entry resets its idle time); an entry idle past `claim_idle` belonged to a
//!   worker that died and is taken over by another with `XAUTOCLAIM`.
//! - A worker's reply steps go to the reply stream of the gateway that queued the
//!   thought (`{prefix}:replies:{gateway}`), read by that gateway alone and fed to
//!   the conversation's send queue ([`ReplyAssembly`] keeps it one reply when a
//!   thought was answered twice).
//! - Cancelling publishes the thought on `{prefix}:cancel` (every worker listens;
//!   the one holding it stops within milliseconds) and leaves a key a worker
//!   checks before it starts.
//! - A finished thought leaves `{prefix}:done:{thought}`, so a claimed entry whose
//!   worker died after answering is not answered again.
//! - Platform event ids are claimed with `SET NX` and a TTL ([`RedisSeenEvents`]).
//! - A worker's question for the owner (a tool approval) goes to `{prefix}:asks`;
//!   the gateway asks and pushes the answer to `{prefix}:answer:{id}`
//!   ([`RedisAsker`], [`serve_asks`]).
//!
//! Per-conversation order needs nothing here: a conversation's actor queues its
//! next thought only after the previous reply ended.

mod asks;
mod assembly;
mod gateway;
mod wire;
mod worker;

pub use asks::{RedisAsker, serve_asks};
pub use assembly::{Action, ReplyAssembly};
pub use gateway::{RedisQueue, RedisSeenEvents};
pub use wire::{Envelope, Step, WorkerEvent, decode};
pub use worker::{Worker, WorkerConfig};

use clara_core::backoff::Backoff;
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Client};
use std::time::Duration;

/// The consumer group of workers on the thoughts stream.
pub const GROUP: &str = "workers";
/// How long one blocking stream read waits for entries.
const BLOCK: Duration = Duration::from_millis(2_000);
/// How long an ordinary command may take before the connection is deemed lost.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Entries kept in a stream (approximately; `XADD MAXLEN ~`).
const STREAM_MAX_LEN: usize = 100_000;
/// How long a reply stream outlives its last step (a gateway that stopped
/// leaves one behind).
const REPLY_STREAM_TTL_SECS: u64 = 86_400;
/// How long a finished thought's mark stays.
const DONE_TTL_SECS: u64 = 86_400;
/// How long a cancelled thought's mark stays (longer than any queue wait).
const CANCEL_TTL_SECS: u64 = 3_600;

/// Where and how to use Redis.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key, so deployments can share a server.
    pub prefix: String,
    /// A held thought idle this long belongs to a dead worker.
    pub claim_idle: Duration,
    /// How long platform event ids are remembered.
    pub event_ttl: Duration,
}

impl RedisConfig {
    /// Settings for `url` with the defaults.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "clara".into(),
            claim_idle: Duration::from_secs(10),
            event_ttl: Duration::from_secs(86_400),
        }
    }

    pub(crate) fn thoughts(&self) -> String {
        format!("{}:thoughts", self.prefix)
    }

    pub(crate) fn replies(&self, gateway: &str) -> String {
        format!("{}:replies:{gateway}", self.prefix)
    }

    pub(crate) fn cancel_channel(&self) -> String {
        format!("{}:cancel", self.prefix)
    }

    pub(crate) fn cancelled(&self, thought: &clara_core::ThoughtId) -> String {
        format!("{}:cancelled:{thought}", self.prefix)
    }

    pub(crate) fn done(&self, thought: &clara_core::ThoughtId) -> String {
        format!("{}:done:{thought}", self.prefix)
    }

    pub(crate) fn event(&self, conversation: &clara_core::ConversationRef, event: &str) -> String {
        format!(
            "{}:event:{}:{}:{event}",
            self.prefix, conversation.platform, conversation.channel
        )
    }

    /// How often a worker heart-beats a held thought.
    pub(crate) fn heartbeat(&self) -> Duration {
        self.claim_idle / 3
    }
}

/// Why the Redis queue could not be used.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The URL is not a Redis URL.
    #[error("REDIS_URL is not a valid Redis URL (expected redis://host:port/db)")]
    Url,
    /// Redis answered with an error or could not be reached.
    #[error("Redis at {address}: {source}")]
    Redis {
        /// Host and port (never the password).
        address: String,
        /// What went wrong.
        source: redis::RedisError,
    },
}

/// A client and its address for messages (without credentials).
#[derive(Clone)]
pub(crate) struct Connector {
    client: Client,
    address: String,
}

impl Connector {
    pub(crate) fn new(url: &str) -> Result<Self, QueueError> {
        let client = Client::open(url).map_err(|_| QueueError::Url)?;
        let address = client.get_connection_info().addr().to_string();
        Ok(Self { client, address })
    }

    pub(crate) fn error(&self, source: redis::RedisError) -> QueueError {
        QueueError::Redis {
            address: self.address.clone(),
            source,
        }
    }

    /// A shared connection for short commands; it reconnects by itself.
    pub(crate) async fn manager(&self) -> Result<ConnectionManager, QueueError> {
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT));
        self.client
            .get_connection_manager_with_config(config)
            .await
            .map_err(|e| self.error(e))
    }

    /// A connection of its own for blocking reads: a blocking command on a
    /// shared connection would stall every other command behind it.
    pub(crate) async fn blocking(&self) -> Result<MultiplexedConnection, QueueError> {
        self.blocking_for(BLOCK).await
    }

    /// A connection of its own for blocking reads of up to `wait`.
    pub(crate) async fn blocking_for(
        &self,
        wait: Duration,
    ) -> Result<MultiplexedConnection, QueueError> {
        let config = AsyncConnectionConfig::new()
            .set_response_timeout(Some(wait + RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(RESPONSE_TIMEOUT));
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| self.error(e))
    }

    pub(crate) async fn pubsub(&self) -> Result<redis::aio::PubSub, QueueError> {
        self.client
            .get_async_pubsub()
            .await
            .map_err(|e| self.error(e))
    }
}

/// `XADD stream MAXLEN ~ … * v json`: one entry, the stream kept bounded.
pub(crate) fn append(stream: &str, json: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream)
        .arg("MAXLEN")
        .arg("~")
        .arg(STREAM_MAX_LEN)
        .arg("*")
        .arg(wire::FIELD)
        .arg(json);
    cmd
}

/// Creates the workers' group (and the stream) unless it exists. From `0`, so
/// thoughts queued before any worker started are read.
pub(crate) async fn ensure_group(
    conn: &mut impl redis::aio::ConnectionLike,
    stream: &str,
) -> redis::RedisResult<()> {
    let created: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match created {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        other => other,
    }
}

/// Whether Redis said the group (or its stream) is gone: the server restarted
/// without persistence.
pub(crate) fn is_no_group(error: &redis::RedisError) -> bool {
    error.code() == Some("NOGROUP")
}

/// How long to wait before trying Redis again: 50 ms doubling, up to five seconds.
const RECONNECT: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(5));

/// The wait after `failures` failures in a row, counted from 0 (the first retry
/// of a loop that has not failed yet waits 50 ms, the first failure 100 ms).
pub(crate) fn backoff(failures: u32) -> Duration {
    RECONNECT.delay(failures.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnects_wait_as_they_always_did() {
        let before = |f: u32| {
            Duration::from_millis(50u64.saturating_mul(1 << f.min(7))).min(Duration::from_secs(5))
        };
        for failures in (0..40).chain([u32::MAX]) {
            assert_eq!(backoff(failures), before(failures), "{failures}");
        }
    }
}
