//! The MCP manager: every configured server and its supervisor, kept in step
//! with `[[mcp.servers]]` and the files of `servers_dir` while Clara runs.

use crate::config::{McpSettings, ServerConfig};
use crate::files::{self, FileError};
use crate::supervisor::{Options, ServerState, ServerStatus, Supervisor};
use async_trait::async_trait;
use clara_core::backoff::Backoff;
use clara_core::component::ConfigError;
use clara_tools::{Tool, ToolError, ToolProvider, WeakToolRegistry};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

/// Seconds an MCP call may take by default: below the registry's own bound
/// (`[tools] timeout_secs`, 30 s), so the model gets the server-specific message.
pub const DEFAULT_CALL_TIMEOUT_SECS: u64 = 25;

/// The server name the manager's own tools are offered under (`mcp__list`).
pub const MANAGER_SERVER: &str = "mcp";

/// How often `servers_dir` is checked for changes.
const POLL_EVERY: Duration = Duration::from_secs(2);

/// A handle to the MCP manager; clones share it.
///
/// Until [`McpManager::attach`] (which the [provider](McpManager::provider)
/// calls when it is added to a registry) nothing runs. Then every enabled
/// server has a supervisor, and [`McpManager::reconcile`] (run by a poller
/// every two seconds when `servers_dir` changed) starts, restarts and stops
/// supervisors to match the configuration. Replies already running keep the
/// tools they started with.
#[derive(Clone)]
pub struct McpManager {
    inner: Arc<Inner>,
}

struct Inner {
    /// `[[mcp.servers]]`, replaced when `config_file` changes.
    inline: Mutex<Vec<ServerConfig>>,
    /// The `clara.toml` to watch, and how it looked when last read.
    config_file: Option<PathBuf>,
    config_stamp: Mutex<Option<(u64, Option<SystemTime>)>>,
    servers_dir: Option<PathBuf>,
    options: Options,
    registry: Mutex<Option<WeakToolRegistry>>,
    servers: Mutex<BTreeMap<String, Supervisor>>,
    /// One reconcile at a time.
    reconciling: tokio::sync::Mutex<()>,
    /// What `servers_dir` looked like at the last reconcile.
    stamp: Mutex<Option<Stamp>>,
    /// The status last written to the status file.
    published: Mutex<Option<Vec<ServerStatus>>>,
    stop: CancellationToken,
}

/// The `*.toml` files of a directory with their size and modification time:
/// a cheap way to see that something changed.
type Stamp = Vec<(PathBuf, u64, Option<SystemTime>)>;

impl std::fmt::Debug for McpManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpManager")
            .field("servers_dir", &self.inner.servers_dir)
            .field(
                "servers",
                &self.inner.servers.lock().keys().collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl McpManager {
    /// A manager for `settings`: checks every `[[mcp.servers]]` entry (a bad
    /// one or a duplicate name is an error naming it). Starts nothing.
    pub fn new(settings: &McpSettings) -> Result<Self, ConfigError> {
        let mut seen = std::collections::BTreeSet::new();
        for server in &settings.servers {
            server.validate()?;
            if !seen.insert(server.name.as_str()) {
                return Err(ConfigError::new(format!(
                    "[mcp] two servers are named {:?}",
                    server.name
                )));
            }
        }
        let homes = settings
            .homes_dir
            .clone()
            .or_else(|| settings.servers_dir.as_ref().map(|d| d.join(".home")))
            .unwrap_or_else(|| std::env::temp_dir().join("clara-mcp-home"));
        let options = Options {
            call_timeout: Duration::from_secs(
                settings
                    .call_timeout_secs
                    .unwrap_or(DEFAULT_CALL_TIMEOUT_SECS)
                    .max(1),
            ),
            refresh: Duration::from_secs(settings.refresh_secs.unwrap_or(300).max(1)),
            homes,
            backoff: Backoff::default(),
            credentials: settings
                .servers_dir
                .as_deref()
                .map(crate::credentials::Credentials::new)
                .transpose()
                .map_err(|e| ConfigError::new(format!("[mcp] {e}")))?,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                inline: Mutex::new(settings.servers.clone()),
                config_file: settings.config_file.clone(),
                config_stamp: Mutex::new(settings.config_file.as_deref().map(file_stamp)),
                servers_dir: settings.servers_dir.clone(),
                options,
                registry: Mutex::new(None),
                servers: Mutex::new(BTreeMap::new()),
                reconciling: tokio::sync::Mutex::new(()),
                stamp: Mutex::new(None),
                published: Mutex::new(None),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// The provider to add to Clara's tool registry: server [`MANAGER_SERVER`],
    /// with the management tools (none yet). When it is added it calls
    /// [`McpManager::attach`].
    pub fn provider(&self) -> Arc<dyn ToolProvider> {
        self.provider_with_tools(Vec::new())
    }

    /// [`McpManager::provider`] offering `tools` under [`MANAGER_SERVER`] (the
    /// management tools, which hold a clone of this manager).
    pub fn provider_with_tools(&self, tools: Vec<Arc<dyn Tool>>) -> Arc<dyn ToolProvider> {
        Arc::new(McpProvider {
            manager: self.clone(),
            tools,
            waited: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The directory of server files, if one is configured.
    pub fn servers_dir(&self) -> Option<&Path> {
        self.inner.servers_dir.as_deref()
    }

    /// Starts the supervisors of the enabled servers, publishing to
    /// `registry`, and the poller of `servers_dir`. Called once; a second call
    /// only reconciles.
    pub async fn attach(&self, registry: WeakToolRegistry) {
        let first = {
            let mut slot = self.inner.registry.lock();
            let first = slot.is_none();
            *slot = Some(registry);
            first
        };
        self.reconcile().await;
        if first && (self.inner.servers_dir.is_some() || self.inner.config_file.is_some()) {
            let manager = self.clone();
            tokio::spawn(async move { manager.poll().await });
        }
    }

    /// Every configured server now: `[[mcp.servers]]` then the files of
    /// `servers_dir`. A file that cannot be read, or that names a server
    /// already configured, is logged and skipped (a file overrides nothing).
    pub fn configured(&self) -> Vec<ServerConfig> {
        let mut servers: BTreeMap<String, ServerConfig> = self
            .inner
            .inline
            .lock()
            .iter()
            .map(|c| (c.name.clone(), c.clone()))
            .collect();
        if let Some(dir) = &self.inner.servers_dir {
            let (configs, errors) = files::read_dir(dir);
            for error in errors {
                tracing::warn!(%error, "an MCP server file is skipped");
            }
            for config in configs {
                if servers.contains_key(&config.name) {
                    let error = FileError::Invalid {
                        path: files::server_file(dir, &config.name),
                        error: ConfigError::new(format!(
                            "a server named {:?} is already configured; this file is skipped",
                            config.name
                        )),
                    };
                    tracing::warn!(%error, "an MCP server file is skipped");
                    continue;
                }
                servers.insert(config.name.clone(), config);
            }
        }
        servers.into_values().collect()
    }

    /// Brings the supervisors in line with the configuration: starts added
    /// and enabled servers, restarts changed ones, stops removed and disabled
    /// ones. Before [`McpManager::attach`] nothing is started.
    pub async fn reconcile(&self) {
        let _one = self.inner.reconciling.lock().await;
        if let Some(dir) = &self.inner.servers_dir {
            *self.inner.stamp.lock() = Some(stamp(dir));
        }
        let desired: BTreeMap<String, ServerConfig> = self
            .configured()
            .into_iter()
            .map(|c| (c.name.clone(), c))
            .collect();
        let registry = self.inner.registry.lock().clone();
        let stopped = self.inner.stop.is_cancelled();

        // Take out what must stop, under the lock; stop it outside.
        let mut to_stop = Vec::new();
        {
            let mut servers = self.inner.servers.lock();
            let names: Vec<String> = servers.keys().cloned().collect();
            for name in names {
                // Kept when its configuration is the same and it runs exactly
                // when it should (an idle one is replaced once a registry is here).
                let keep = !stopped
                    && desired.get(&name).is_some_and(|c| {
                        servers.get(&name).is_some_and(|s| {
                            &s.config == c && s.is_running() == (c.enabled && registry.is_some())
                        })
                    });
                if !keep && let Some(supervisor) = servers.remove(&name) {
                    to_stop.push(supervisor);
                }
            }
        }
        for supervisor in to_stop {
            tracing::info!(server = %supervisor.config.name, "MCP server stopped (removed, changed or disabled)");
            supervisor.stop().await;
        }
        let mut servers = self.inner.servers.lock();
        for (name, config) in desired {
            if servers.contains_key(&name) {
                continue;
            }
            let supervisor = match (&registry, config.enabled && !stopped) {
                (_, false) if !config.enabled => Supervisor::idle(config, ServerState::Disabled),
                (Some(registry), true) => {
                    tracing::info!(server = %name, "MCP server starting");
                    Supervisor::start(config, registry.clone(), self.inner.options.clone())
                }
                _ => Supervisor::idle(config, ServerState::Stopped),
            };
            servers.insert(name, supervisor);
        }
    }

    /// Every server's status, by name.
    pub fn status(&self) -> Vec<ServerStatus> {
        let servers = self.inner.servers.lock();
        if servers.is_empty() && self.inner.registry.lock().is_none() {
            drop(servers);
            // Not attached: what is configured, as not running here.
            return self
                .configured()
                .iter()
                .map(|c| {
                    let state = if c.enabled {
                        ServerState::Stopped
                    } else {
                        ServerState::Disabled
                    };
                    ServerStatus::new(c, state)
                })
                .collect();
        }
        servers.values().map(Supervisor::status).collect()
    }

    /// Stops every server and the poller; their tools are withdrawn and their
    /// processes gone when this returns. The manager starts nothing after it.
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        let _one = self.inner.reconciling.lock().await;
        let all: Vec<Supervisor> = std::mem::take(&mut *self.inner.servers.lock())
            .into_values()
            .collect();
        let mut stopping = tokio::task::JoinSet::new();
        for supervisor in all {
            stopping.spawn(supervisor.stop());
        }
        while stopping.join_next().await.is_some() {}
        if let Some(dir) = &self.inner.servers_dir {
            crate::status_file::remove(dir);
        }
    }

    /// Reconciles whenever the files of `servers_dir` change, until shutdown.
    async fn poll(&self) {
        let mut tick = tokio::time::interval(POLL_EVERY);
        loop {
            tokio::select! {
                () = self.inner.stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            let mut changed = false;
            if let Some(dir) = &self.inner.servers_dir {
                let now = stamp(dir);
                if self.inner.stamp.lock().as_ref() != Some(&now) {
                    tracing::debug!(dir = %dir.display(), "MCP servers directory changed");
                    changed = true;
                }
            }
            if let Some(file) = &self.inner.config_file {
                let now = file_stamp(file);
                let before = self.inner.config_stamp.lock().replace(now);
                if before != Some(now) && self.reread_config(file) {
                    changed = true;
                }
            }
            if changed {
                self.reconcile().await;
            }
            self.publish_status();
        }
    }

    /// Writes the live status for other processes (`clara mcp list`) when it
    /// changed, or while a server waits to retry (its countdown moves).
    fn publish_status(&self) {
        let Some(dir) = &self.inner.servers_dir else {
            return;
        };
        let now = self.status();
        let retrying = now
            .iter()
            .any(|s| matches!(s.state, ServerState::Failed { .. }));
        let mut last = self.inner.published.lock();
        if retrying || last.as_ref() != Some(&now) {
            crate::status_file::write(dir, &now);
            *last = Some(now);
        }
    }

    /// Reads `[[mcp.servers]]` from `file` again; a file that no longer parses
    /// or a bad server keeps the servers as they were (said in one line).
    /// Returns whether the list changed.
    fn reread_config(&self, file: &Path) -> bool {
        #[derive(serde::Deserialize, Default)]
        struct File {
            #[serde(default)]
            mcp: Section,
        }
        #[derive(serde::Deserialize, Default)]
        struct Section {
            #[serde(default)]
            servers: Vec<ServerConfig>,
        }
        let parsed = std::fs::read_to_string(file)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                // Only `[mcp]` matters here; the rest was checked at start.
                let value: toml::Value = toml::from_str(&text).map_err(|e| {
                    format!("line {}", e.span().map_or(0, |s| line_of(&text, s.start)))
                })?;
                // serde's message may quote a value (an env secret): not logged.
                let file: File = value.try_into().map_err(|_: toml::de::Error| {
                    "it is not a valid [mcp] section (`clara` names the key at start)".to_owned()
                })?;
                let mut seen = std::collections::BTreeSet::new();
                for server in &file.mcp.servers {
                    server.validate().map_err(|e| e.to_string())?;
                    if !seen.insert(server.name.clone()) {
                        return Err(format!("two servers are named {:?}", server.name));
                    }
                }
                Ok(file.mcp.servers)
            });
        match parsed {
            Ok(servers) => {
                let mut inline = self.inner.inline.lock();
                let changed = *inline != servers;
                if changed {
                    tracing::info!(file = %file.display(), "[[mcp.servers]] changed; applying");
                }
                *inline = servers;
                changed
            }
            Err(error) => {
                tracing::warn!(file = %file.display(), %error, "the changed configuration's [mcp] section cannot be used; keeping the servers as they were");
                false
            }
        }
    }
}

/// A file's size and modification time.
fn file_stamp(file: &Path) -> (u64, Option<SystemTime>) {
    let meta = std::fs::metadata(file).ok();
    (
        meta.as_ref().map_or(0, |m| m.len()),
        meta.and_then(|m| m.modified().ok()),
    )
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

fn stamp(dir: &Path) -> Stamp {
    files::toml_files(dir)
        .into_iter()
        .map(|path| {
            let meta = std::fs::metadata(&path).ok();
            let len = meta.as_ref().map_or(0, |m| m.len());
            let modified = meta.and_then(|m| m.modified().ok());
            (path, len, modified)
        })
        .collect()
}

/// The manager's own provider (server `mcp`).
struct McpProvider {
    manager: McpManager,
    tools: Vec<Arc<dyn Tool>>,
    /// Whether the first listing has waited for the servers to start.
    waited: std::sync::atomic::AtomicBool,
}

/// How long Clara's start waits for the configured servers' first tool lists,
/// so the first messages after a start already have them. A server slower
/// than this joins when it is ready.
const STARTUP_WAIT: Duration = Duration::from_secs(15);

impl McpManager {
    /// Waits until no enabled server is still starting (each is ready, failed
    /// or needs a login), or `limit` has passed.
    pub async fn started(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let starting = self
                .status()
                .iter()
                .any(|s| matches!(s.state, ServerState::Starting | ServerState::Stopped));
            if !starting || tokio::time::Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[async_trait]
impl ToolProvider for McpProvider {
    fn server(&self) -> &str {
        MANAGER_SERVER
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        // The registry lists a provider right after attaching it, at start:
        // give the servers a moment to publish theirs too.
        if !self.waited.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.manager.started(STARTUP_WAIT).await;
        }
        Ok(self.tools.clone())
    }

    fn attached(&self, registry: WeakToolRegistry) {
        let manager = self.manager.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { manager.attach(registry).await });
            }
            Err(_) => {
                tracing::error!(
                    "the MCP provider was added outside a Tokio runtime; no MCP server starts"
                );
            }
        }
    }
}
