//! Running platform adapters: the one code path `clara serve` (every configured
//! adapter, against the engine) and `clara adapter NAME` (one adapter, against a
//! remote gateway) share. Which adapters exist is `crate::platforms`; which are
//! configured is the settings' business.

use clara_core::port::{Adapter, AdapterError, Assistant, OutboundSink};
use clara_core::webhook::WebhookRoute;
use std::sync::Arc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An adapter's loop, running in its own task.
pub struct RunningAdapter {
    /// The platform.
    pub platform: &'static str,
    task: JoinHandle<Result<(), AdapterError>>,
}

/// Starts `adapter`'s loop, handing messages to `assistant` until `stop` fires.
/// Its sink must already be where replies go (attached to the engine, or given
/// to the gateway client).
pub fn spawn(
    adapter: Box<dyn Adapter>,
    assistant: Arc<dyn Assistant>,
    stop: CancellationToken,
) -> RunningAdapter {
    let platform = adapter.platform();
    RunningAdapter {
        platform,
        task: tokio::spawn(adapter.run(assistant, stop)),
    }
}

impl RunningAdapter {
    /// Waits for the loop to end: `Err` with one sentence when the platform
    /// refused the adapter or its task failed.
    pub async fn finished(self) -> Result<(), String> {
        match self.task.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(format!("the {} adapter stopped: {error}", self.platform)),
            Err(error) => Err(format!("the {} adapter failed: {error}", self.platform)),
        }
    }
}

/// Every adapter's sink attached with `attach`, then every loop started.
/// An adapter that stops on its own (its token revoked) is logged; the others
/// and the rest of Clara keep serving.
pub fn start_all(
    adapters: Vec<Box<dyn Adapter>>,
    assistant: &Arc<dyn Assistant>,
    attach: impl Fn(&'static str, Arc<dyn OutboundSink>),
    stop: &CancellationToken,
) -> Vec<JoinHandle<()>> {
    adapters
        .into_iter()
        .map(|adapter| {
            let platform = adapter.platform();
            attach(platform, adapter.sink());
            let run = adapter.run(Arc::clone(assistant), stop.clone());
            tokio::spawn(async move {
                if let Err(error) = run.await {
                    tracing::error!(platform, %error, "the adapter stopped");
                }
            })
        })
        .collect()
}

/// The webhook routes of `adapters`, by platform, for the gateway port.
pub fn webhooks(adapters: &[Box<dyn Adapter>]) -> Vec<(&'static str, Vec<WebhookRoute>)> {
    adapters
        .iter()
        .map(|a| (a.platform(), a.webhooks()))
        .filter(|(_, routes)| !routes.is_empty())
        .collect()
}
