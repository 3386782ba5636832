//! What Clara starts herself, wired for one process: the `schedule__*` tools
//! (and `mail__*` when e-mail is on), the scheduler, the outbox's delivery
//! and the mail watcher. `serve`, `gateway` and `chat` start them with the
//! engine; a `worker` only adds the tools (its gateway fires and delivers).

use crate::email::Email;
use clara_runtime::proactive::ProactiveConfig;
use clara_runtime::{
    Clock, Engine, Proactive, ProactiveDelivery, ProactiveSignals, ScheduleBook, ScheduleTools,
    Scheduler, SystemClock,
};
use clara_store::Store;
use clara_tools::{ToolProvider, ToolRegistry};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Adds the schedule tools, and the mail tools when e-mail is on, to
/// `registry`. `signals` wake this process's scheduler when a schedule is
/// added (a worker's wake nobody: its gateway looks every few seconds).
pub async fn add_tools(
    registry: &ToolRegistry,
    store: &Store,
    signals: Arc<ProactiveSignals>,
    email: Option<&Email>,
) {
    let book = ScheduleBook::new(store.clone(), Arc::new(SystemClock), signals);
    let mut providers: Vec<Arc<dyn ToolProvider>> = vec![Arc::new(ScheduleTools::new(book))];
    if let Some(email) = email {
        providers.push(Arc::new(email.tools()));
    }
    for provider in providers {
        let server = provider.server().to_owned();
        if let Err(error) = registry.add_provider(provider).await {
            tracing::warn!(%server, %error, "a tool server has no tools for now");
        }
    }
}

/// Starts the scheduler and the outbox's delivery for `engine`'s platforms,
/// and — with `watch_mail` — the mail watcher, until `stop`.
pub fn start(engine: &Engine, email: Option<&Email>, watch_mail: bool, stop: &CancellationToken) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let signals = Arc::clone(engine.proactive_signals());
    let config = ProactiveConfig::default();
    let scheduler = Scheduler::new(
        engine.store().clone(),
        Arc::clone(&clock),
        Arc::clone(&signals),
        config.clone(),
    );
    tokio::spawn(scheduler.run(stop.clone()));
    let delivery = ProactiveDelivery::new(engine.clone(), Arc::clone(&clock), config);
    tokio::spawn(delivery.run(stop.clone()));
    if watch_mail && let Some(email) = email {
        let proactive = Proactive::new(engine.store().clone(), signals, clock);
        email.watch(proactive, Arc::clone(engine.provider()), stop.clone());
    }
}
