//! `clara gateway`: `clara serve` with its replies answered by `clara worker`
//! processes through Redis. The conversations (chunking, cancellation, the
//! window, what is stored) stay here; recall, the model and tools run on the
//! workers.

use crate::Running;
use crate::settings::Resolved;
use anyhow::{Context, Result};
use clara_core::port::Adapter;
use clara_runtime::queue::redis::{RedisConfig, RedisQueue, RedisSeenEvents, serve_asks};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Serves until a shutdown signal; the caller then shuts the engine down.
pub async fn run(
    resolved: &Resolved,
    running: &Running,
    adapters: Vec<Box<dyn Adapter>>,
    redis: RedisConfig,
) -> Result<()> {
    let engine = &running.engine;
    if resolved.postgres_url.is_none() {
        tracing::warn!(
            "DATABASE_URL is not a PostgreSQL database: workers on other machines cannot reach this SQLite file"
        );
    }
    let stop = CancellationToken::new();
    let queue = RedisQueue::connect(redis.clone(), stop.clone())
        .await
        .context("cannot start the gateway's queue")?;
    tracing::info!(
        replies = queue.reply_stream(),
        "queue ready: replies come from clara worker processes"
    );
    engine.set_reply_queue(Arc::new(queue));
    let redis_for_asks = redis.clone();
    engine.set_seen_events(Arc::new(
        RedisSeenEvents::connect(redis)
            .await
            .context("cannot start event deduplication")?,
    ));
    // Workers' questions for the owner (tool approvals) are asked here, where
    // the platforms are.
    let asks = tokio::spawn(serve_asks(
        redis_for_asks,
        Arc::new(engine.approvals().clone()),
        stop.clone(),
    ));
    let served = crate::serve::run(resolved, running, adapters).await;
    stop.cancel();
    if let Ok(Err(error)) = asks.await {
        tracing::warn!(%error, "questions for the owner could not be served");
    }
    served
}
