//! What every handler shares: the engine, the store and Rook, the schedule
//! book, the settings, the web platform's hub, the logins, and one lock per
//! API conversation.

use crate::http::HttpConfig;
use crate::http::auth::{LoginBrake, Logins};
use crate::http::hub::Hub;
use crate::http::tools::ToolServers;
use clara_memory::Rook;
use clara_runtime::{Engine, ScheduleBook, SystemClock};
use clara_store::Store;
use metrics_exporter_prometheus::PrometheusHandle;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ops::Deref;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::OwnedMutexGuard;
use tokio_util::sync::CancellationToken;

/// Login attempts (failed, or being checked) allowed per [`LOGIN_BRAKE_WINDOW`]
/// before logins pause.
const LOGIN_BRAKE_MAX: usize = 10;
/// See [`LOGIN_BRAKE_MAX`].
const LOGIN_BRAKE_WINDOW: Duration = Duration::from_secs(60);

/// What the HTTP face is built on, each given explicitly by whoever wires Clara
/// (the binary): the engine for messages (submit, stop, typing, new session)
/// and for the `web` platform's replies, the store for sessions, messages and
/// usage, Rook for the memory browser, and the tool servers for the Tools panel.
#[derive(Clone)]
pub struct HttpDeps {
    /// The engine the web page and the API talk to.
    pub engine: Engine,
    /// The SQL store: the person's sessions and messages, a reply's usage,
    /// readiness.
    pub store: Store,
    /// Long-term memory, when Clara has it; without it the memory endpoints
    /// answer that memory is off.
    pub memory: Option<Rook>,
    /// The tool servers (MCP) the page's Tools panel shows, when this Clara
    /// has any; without them the panel shows only the owner's rules.
    pub tool_servers: Option<Arc<dyn ToolServers>>,
}

/// The handlers' shared state. Cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) store: Store,
    pub(crate) memory: Option<Rook>,
    pub(crate) tool_servers: Option<Arc<dyn ToolServers>>,
    /// People's reminders, tasks and alert settings: the same book the
    /// `schedule__*` tools use, waking this process's scheduler.
    pub(crate) schedules: ScheduleBook,
    pub(crate) config: HttpConfig,
    pub(crate) hub: Arc<Hub>,
    pub(crate) logins: Logins,
    pub(crate) brake: LoginBrake,
    pub(crate) api_turns: ConversationLocks,
    /// Fires at shutdown: open event streams end.
    pub(crate) stop: CancellationToken,
    pub(crate) metrics: Option<PrometheusHandle>,
    /// When this server started, Unix seconds (the models' `created`).
    pub(crate) started_at_s: i64,
}

impl AppState {
    pub(crate) fn new(
        deps: HttpDeps,
        config: HttpConfig,
        hub: Arc<Hub>,
        stop: CancellationToken,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        // Built here from the engine and the store, so whoever wires Clara
        // need not hand it over: a schedule made on the page wakes the
        // scheduler the engine's signals wake.
        let schedules = ScheduleBook::new(
            deps.store.clone(),
            Arc::new(SystemClock),
            Arc::clone(deps.engine.proactive_signals()),
        );
        Self {
            inner: Arc::new(Inner {
                schedules,
                engine: deps.engine,
                store: deps.store,
                memory: deps.memory,
                tool_servers: deps.tool_servers,
                config,
                hub,
                logins: Logins::default(),
                brake: LoginBrake::new(LOGIN_BRAKE_MAX, LOGIN_BRAKE_WINDOW),
                api_turns: ConversationLocks::default(),
                stop,
                metrics,
                started_at_s: clara_runtime::clock::now_ms() / 1000,
            }),
        }
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.inner
    }
}

/// One async lock per conversation, made on demand and dropped when unused: API
/// requests of one person take turns, so each gets its own answer rather than
/// cancelling the other's.
#[derive(Default)]
pub(crate) struct ConversationLocks {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl ConversationLocks {
    /// Waits for `channel`'s turn; the turn lasts as long as the guard.
    pub(crate) async fn turn(&self, channel: &str) -> OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.locks.lock();
            match locks.get(channel).and_then(Weak::upgrade) {
                Some(lock) => lock,
                None => {
                    locks.retain(|_, weak| weak.strong_count() > 0);
                    let lock = Arc::new(tokio::sync::Mutex::new(()));
                    locks.insert(channel.to_owned(), Arc::downgrade(&lock));
                    lock
                }
            }
        };
        lock.lock_owned().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn turns_of_one_conversation_wait_and_others_do_not() {
        let locks = ConversationLocks::default();
        let first = locks.turn("api:ann").await;
        // Another conversation goes at once.
        let _bob = locks.turn("api:bob").await;
        let waiting = tokio::time::timeout(Duration::from_millis(50), locks.turn("api:ann")).await;
        assert!(waiting.is_err(), "ann's second request waits for her first");
        drop(first);
        let second = tokio::time::timeout(Duration::from_secs(5), locks.turn("api:ann")).await;
        assert!(second.is_ok());
    }
}
