//! `clara worker`: answers thoughts that gateways queued in Redis, with this
//! process's model, tools and memory, until SIGINT or SIGTERM. Run as many as
//! the load needs; a worker that dies has its thoughts taken over by the others.

use crate::settings::Resolved;
use crate::{Answering, open_answering};
use anyhow::{Context, Result};
use clara_runtime::brain::Brain;
use clara_runtime::brain::gate::Gate;
use clara_runtime::queue::redis::{RedisAsker, Worker, WorkerConfig};
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `clara worker` options.
#[derive(clap::Args, Debug)]
pub struct WorkerArgs {
    /// This worker's name in the consumer group (default: a fresh unique one).
    #[arg(long)]
    name: Option<String>,
    /// Thoughts answered at once (default: queue.worker_concurrency).
    #[arg(long)]
    concurrency: Option<usize>,
}

/// Runs one worker until a shutdown signal.
pub async fn run(resolved: &Resolved, args: WorkerArgs) -> Result<ExitCode> {
    let redis = resolved.queue.redis()?;
    let Answering {
        provider,
        store,
        memory,
    } = open_answering(resolved).await?;
    let tools =
        crate::tools::registry(&resolved.tools, &resolved.sections, memory.as_ref()).await?;
    // Schedules made here are fired by a gateway, which looks every few seconds.
    let email = crate::email::Email::open(resolved, &store)?;
    crate::proactive::add_tools(
        &tools,
        &store,
        Arc::new(clara_runtime::ProactiveSignals::default()),
        email.as_ref(),
    )
    .await;
    // A worker holds no platform: its questions for the owner go to the
    // gateway through Redis (no gateway answering in time is a deny).
    let asker = Arc::new(RedisAsker::new(
        redis.clone(),
        resolved.engine.approvals.timeout,
    )?);
    let brain = Brain {
        provider,
        tools,
        memory,
        recall_timeout: resolved.engine.recall_timeout,
        gate: Gate::new(&resolved.engine.approvals.rules, &store, asker),
    };
    let name = args.name.unwrap_or_else(|| {
        let id = uuid::Uuid::new_v4().simple().to_string();
        format!("worker-{}", &id[..12])
    });
    let concurrency = args
        .concurrency
        .unwrap_or(resolved.queue.worker_concurrency)
        .max(1);
    let worker = Worker::connect(
        brain,
        WorkerConfig {
            redis,
            name: name.clone(),
            concurrency,
        },
    )
    .await
    .context("cannot join the queue")?;
    tracing::info!(worker = %name, concurrency, "worker ready; stop with Ctrl-C");
    let stop = CancellationToken::new();
    let running = tokio::spawn(worker.run(stop.clone()));
    crate::shutdown_signal().await;
    tracing::info!("shutting down");
    stop.cancel();
    let _ = running.await;
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
