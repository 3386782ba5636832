//! The platform adapters `clara serve` runs in process, each enabled by its
//! token in the configuration.

use crate::settings::Resolved;
use anyhow::Result;
use clara_runtime::Engine;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Starts every configured adapter; each runs until `stop` fires.
pub fn start(
    _resolved: &Resolved,
    _engine: &Engine,
    _stop: &CancellationToken,
) -> Result<Vec<JoinHandle<()>>> {
    let tasks = Vec::new();
    Ok(tasks)
}
