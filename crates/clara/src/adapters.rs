//! The platform adapters `clara serve` runs in process, each enabled by its
//! token in the configuration.

use crate::settings::Resolved;
use anyhow::Result;
use clara_runtime::Engine;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts every configured adapter; each runs until `stop` fires.
pub fn start(
    resolved: &Resolved,
    engine: &Engine,
    stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    let mut tasks = Vec::new();
    tasks.extend(start_telegram(resolved, engine, stop)?);
    tasks.extend(start_discord(resolved, engine, stop)?);
    Ok(tasks)
}

/// Telegram, when `TG_BOT_TOKEN` is set: its sink is attached as `telegram`,
/// its polling loop runs until `stop`.
fn start_telegram(
    resolved: &Resolved,
    engine: &Engine,
    stop: &CancellationToken,
) -> Result<Option<JoinHandle<()>>> {
    use clara_adapters::telegram::{PLATFORM, Telegram};
    let Some(config) = &resolved.telegram else {
        return Ok(None);
    };
    let telegram = Telegram::new(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    engine.attach(PLATFORM, telegram.sink());
    let assistant: std::sync::Arc<dyn clara_core::port::Assistant> =
        std::sync::Arc::new(engine.clone());
    let stop = stop.clone();
    Ok(Some(tokio::spawn(async move {
        if let Err(error) = telegram.run(assistant, stop).await {
            tracing::error!(%error, "the Telegram adapter stopped");
        }
    })))
}

/// Discord, when `DISCORD_BOT_TOKEN` is set: its sink is attached as `discord`,
/// its gateway session runs until `stop`.
fn start_discord(
    resolved: &Resolved,
    engine: &Engine,
    stop: &CancellationToken,
) -> Result<Option<JoinHandle<()>>> {
    use clara_adapters::discord::{Discord, PLATFORM};
    let Some(config) = &resolved.discord else {
        return Ok(None);
    };
    let discord = Discord::new(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    engine.attach(PLATFORM, discord.sink());
    let assistant: std::sync::Arc<dyn clara_core::port::Assistant> =
        std::sync::Arc::new(engine.clone());
    let stop = stop.clone();
    Ok(Some(tokio::spawn(async move {
        if let Err(error) = discord.run(assistant, stop).await {
            tracing::error!(%error, "the Discord adapter stopped");
        }
    })))
}
