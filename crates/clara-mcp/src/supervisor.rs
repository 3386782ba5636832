//! One task per server: connect, publish its tools, keep the list fresh, and
//! restart it with backoff when it crashes or disconnects.
//!
//! States: `Disabled` (nothing runs), `Starting`, `Ready`, `Failed` (waiting
//! for the next attempt), `NeedsAuth` (an HTTP server answered 401 and there
//! are no usable OAuth tokens: it waits, without retrying, until a login
//! stores some). While a server is not ready its tools are withdrawn
//! from the registry; a call already running on it fails with a message and is
//! never sent again.

use crate::client::{self, ConnectError, Connection, Handler};
use crate::config::{ServerConfig, Transport};
use crate::credentials::Credentials;
use crate::names::exposed_names;
use crate::tool::{Link, McpTool};
use chrono::{DateTime, Utc};
use clara_core::backoff::Backoff;
use clara_core::tool::namespaced;
use clara_tools::{Tool, WeakToolRegistry};
use parking_lot::Mutex;
use serde::Serialize;
use std::path::PathBuf;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What a server is doing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ServerState {
    /// Configured but disabled: nothing runs.
    Disabled,
    /// Known but not run by this process (no registry attached yet, or shut down).
    Stopped,
    /// Starting or reconnecting.
    Starting,
    /// Connected, its tools published.
    Ready {
        /// How many tools it offers.
        tools: usize,
    },
    /// The last attempt failed; the next one is at `retry_at`.
    Failed {
        /// What went wrong (never a secret).
        error: String,
        /// When Clara tries again.
        retry_at: DateTime<Utc>,
    },
    /// The HTTP server wants an OAuth login; Clara connects again once
    /// credentials are stored (`login` shows how).
    NeedsAuth {
        /// The server's URL.
        url: String,
        /// The command that logs in (`clara mcp login NAME`).
        login: String,
    },
}

impl ServerState {
    /// One line for people: `ready, 13 tools`, `failed: … (retrying in 4 s)`.
    pub fn describe(&self) -> String {
        match self {
            Self::Disabled => "disabled".to_owned(),
            Self::Stopped => "not running".to_owned(),
            Self::Starting => "starting".to_owned(),
            Self::Ready { tools: 1 } => "ready, 1 tool".to_owned(),
            Self::Ready { tools } => format!("ready, {tools} tools"),
            Self::Failed { error, retry_at } => {
                let wait = (*retry_at - Utc::now()).num_seconds().max(0);
                format!("failed: {error} (retrying in {wait} s)")
            }
            Self::NeedsAuth { login, .. } => format!("needs login: run `{login}`"),
        }
    }
}

/// A server as `clara mcp list` and the web page show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ServerStatus {
    /// Its name.
    pub name: String,
    /// How Clara reaches it.
    pub transport: Transport,
    /// What it is doing.
    pub state: ServerState,
    /// Its tools as the model sees them (`{server}__{tool}`).
    pub tools: Vec<String>,
    /// The process id of a running stdio server (its process group id too).
    pub pid: Option<u32>,
    /// Where it came from, as recorded when it was added.
    pub source: Option<String>,
    /// How many times it was connected again after its first connection
    /// (crashes, disconnects) since its supervisor started.
    pub restarts: u32,
}

impl ServerStatus {
    /// `config`'s server, in `state`, with no tools yet.
    pub fn new(config: &ServerConfig, state: ServerState) -> Self {
        Self {
            name: config.name.clone(),
            transport: config.transport(),
            state,
            tools: Vec::new(),
            pid: None,
            source: config.source.clone(),
            restarts: 0,
        }
    }
}

/// What every supervisor of a manager shares.
#[derive(Clone, Debug)]
pub(crate) struct Options {
    /// How long one call (and one `tools/list`) may take.
    pub call_timeout: Duration,
    /// How often tools are listed again.
    pub refresh: Duration,
    /// Where stdio servers get their `HOME` (`<homes>/<name>`).
    pub homes: PathBuf,
    /// Waits between failed attempts.
    pub backoff: Backoff,
    /// Where OAuth tokens of HTTP servers are kept (`None` without a
    /// `servers_dir`: no server can be logged in to).
    pub credentials: Option<Credentials>,
}

/// How often a server waiting for a login looks for new credentials.
const LOGIN_POLL: Duration = Duration::from_secs(1);

/// A server that has been up this long before it failed starts its backoff over.
const STABLE_AFTER: Duration = Duration::from_secs(60);

/// One server's supervisor.
pub(crate) struct Supervisor {
    /// The configuration it runs.
    pub config: ServerConfig,
    status: Arc<Mutex<ServerStatus>>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl Supervisor {
    /// A supervisor that runs nothing, showing `state` (`Disabled`, `Stopped`).
    pub fn idle(config: ServerConfig, state: ServerState) -> Self {
        let status = Arc::new(Mutex::new(ServerStatus::new(&config, state)));
        Self {
            config,
            status,
            stop: CancellationToken::new(),
            task: None,
        }
    }

    /// Starts `config`'s server (which must be enabled) and keeps it running,
    /// publishing its tools to `registry`.
    pub fn start(config: ServerConfig, registry: WeakToolRegistry, options: Options) -> Self {
        let status = Arc::new(Mutex::new(ServerStatus::new(
            &config,
            ServerState::Starting,
        )));
        let stop = CancellationToken::new();
        let run = Run {
            link: Arc::new(Link::new(&config.name, options.call_timeout)),
            config: config.clone(),
            registry,
            options,
            status: Arc::clone(&status),
            stop: stop.clone(),
        };
        let task = tokio::spawn(run.run());
        Self {
            config,
            status,
            stop,
            task: Some(task),
        }
    }

    /// Whether it runs a task (is not idle).
    pub fn is_running(&self) -> bool {
        self.task.is_some()
    }

    /// Its status now.
    pub fn status(&self) -> ServerStatus {
        self.status.lock().clone()
    }

    /// Stops it: its tools are withdrawn and its process group is gone when
    /// this returns.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(server = %self.config.name, %error, "an MCP supervisor ended badly");
        }
        let mut status = self.status.lock();
        if status.state != ServerState::Disabled {
            status.state = ServerState::Stopped;
        }
        status.pid = None;
        status.tools.clear();
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        // A supervisor dropped without `stop` (a manager dropped) still ends:
        // its task drops the connection, which kills the process group.
        self.stop.cancel();
    }
}

/// Why a connection ended.
enum End {
    /// Clara stops it.
    Stopped,
    /// It failed; try again.
    Lost(String),
}

/// The supervisor's task.
struct Run {
    config: ServerConfig,
    link: Arc<Link>,
    registry: WeakToolRegistry,
    options: Options,
    status: Arc<Mutex<ServerStatus>>,
    stop: CancellationToken,
}

impl Run {
    async fn run(self) {
        let name = self.config.name.clone();
        let home = self.options.homes.join(&name);
        let mut failures: u32 = 0;
        let mut connections: u32 = 0;
        // Ends with Clara's registry: nothing is left to publish to.
        while self.registry.upgrade().is_some() {
            self.set_state(ServerState::Starting, None);
            let credentials = self.options.credentials.as_ref();
            // Taken before connecting, so a login that lands meanwhile is seen.
            let stamp = credentials.and_then(|c| c.modified(&name));
            let handler = Handler::default();
            let connecting =
                client::connect_with(&self.config, &home, handler.clone(), credentials);
            let attempt = tokio::select! {
                () = self.stop.cancelled() => break,
                attempt = connecting => attempt,
            };
            let error = match attempt {
                Ok(connection) => {
                    self.status.lock().restarts = connections;
                    connections = connections.saturating_add(1);
                    let started = Instant::now();
                    match self.serve(connection, &handler).await {
                        End::Stopped => break,
                        End::Lost(error) => {
                            if started.elapsed() >= STABLE_AFTER {
                                failures = 0;
                            }
                            error
                        }
                    }
                }
                Err(ConnectError::NeedsAuth { url, .. }) => {
                    // Retrying cannot help: wait for a login instead.
                    tracing::warn!(server = %name, "MCP server needs an OAuth login: run `clara mcp login {name}`");
                    let login = format!("clara mcp login {name}");
                    self.set_state(ServerState::NeedsAuth { url, login }, None);
                    failures = 0;
                    if self.wait_for_login(stamp).await {
                        continue;
                    }
                    break;
                }
                Err(error) => error.to_string(),
            };
            failures = failures.saturating_add(1);
            let wait = self.options.backoff.delay(failures);
            tracing::warn!(server = %name, %error, retry_in_ms = wait.as_millis() as u64, "MCP server failed");
            let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default();
            self.set_state(ServerState::Failed { error, retry_at }, None);
            tokio::select! {
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
        self.link.set(None);
        self.withdraw();
    }

    /// Runs one connection until it ends or Clara stops it.
    async fn serve(&self, mut connection: Connection, handler: &Handler) -> End {
        let pid = connection.child.as_ref().and_then(client::ChildGuard::pid);
        let peer = connection.service.peer().clone();
        let changed = handler.tools_changed();
        let cancel = connection.service.cancellation_token();
        let mut child = connection.child.take();
        let mut ended = pin!(connection.service.waiting());
        // A finished future must not be polled again.
        let mut closed = false;

        let end = match self.publish(&peer, pid).await {
            Err(error) => End::Lost(error),
            Ok(()) => {
                self.link.set(Some(peer.clone()));
                let mut refresh = tokio::time::interval(self.options.refresh);
                refresh.reset();
                loop {
                    let relist = tokio::select! {
                        () = self.stop.cancelled() => break End::Stopped,
                        _ = &mut ended => {
                            closed = true;
                            break End::Lost("the connection closed".to_owned());
                        }
                        () = changed.notified() => true,
                        () = self.link.lost.notified() => true,
                        _ = refresh.tick() => true,
                    };
                    if relist && let Err(error) = self.publish(&peer, pid).await {
                        break End::Lost(error);
                    }
                }
            }
        };
        self.link.set(None);
        self.withdraw();
        // Close the session, then make sure the process group is gone.
        cancel.cancel();
        if !closed {
            let _ = tokio::time::timeout(Duration::from_secs(3), &mut ended).await;
        }
        if let Some(child) = child.as_mut() {
            child.stop().await;
        }
        end
    }

    /// Lists the server's tools and publishes them.
    async fn publish(
        &self,
        peer: &rmcp::Peer<rmcp::RoleClient>,
        pid: Option<u32>,
    ) -> Result<(), String> {
        let listed = tokio::time::timeout(self.options.call_timeout, peer.list_all_tools())
            .await
            .map_err(|_| {
                format!(
                    "it did not list its tools in {} s",
                    self.options.call_timeout.as_secs()
                )
            })?
            .map_err(|error| format!("listing its tools failed: {error}"))?;
        let server = &self.config.name;
        let originals: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
        let names = exposed_names(server, &originals);
        let tools: Vec<Arc<dyn Tool>> = names
            .iter()
            .zip(&listed)
            .map(|(name, tool)| {
                Arc::new(McpTool::new(Arc::clone(&self.link), name.clone(), tool)) as Arc<dyn Tool>
            })
            .collect();
        let namespaced: Vec<String> = names.iter().map(|n| namespaced(server, n)).collect();
        let Some(registry) = self.registry.upgrade() else {
            return Err("Clara's tool registry is gone".to_owned());
        };
        registry.set_server(server, tools);
        let count = namespaced.len();
        {
            let mut status = self.status.lock();
            status.state = ServerState::Ready { tools: count };
            status.tools = namespaced;
            status.pid = pid;
        }
        tracing::debug!(server = %server, tools = count, "MCP server tools published");
        Ok(())
    }

    /// Waits until the server's credentials file changes from `stamp` (a
    /// login stored tokens); `false` when Clara stops it first.
    async fn wait_for_login(&self, stamp: Option<std::time::SystemTime>) -> bool {
        let Some(credentials) = self.options.credentials.as_ref() else {
            self.stop.cancelled().await;
            return false;
        };
        loop {
            tokio::select! {
                () = self.stop.cancelled() => return false,
                () = tokio::time::sleep(LOGIN_POLL) => {}
            }
            if self.registry.upgrade().is_none() {
                return false;
            }
            if credentials.modified(&self.config.name) != stamp {
                return true;
            }
        }
    }

    fn withdraw(&self) {
        if let Some(registry) = self.registry.upgrade() {
            registry.remove_server(&self.config.name);
        }
    }

    fn set_state(&self, state: ServerState, pid: Option<u32>) {
        let mut status = self.status.lock();
        status.state = state;
        status.tools.clear();
        status.pid = pid;
    }
}
