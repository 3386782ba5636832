//! `clara serve`: the engine, its network face on the gateway port (web page,
//! HTTP API, WebSocket protocol for adapters in other processes) and the platform
//! adapters the configuration enables, until SIGINT or SIGTERM.

use crate::Running;
use crate::settings::Resolved;
use anyhow::{Context, Result};
use axum::serve::ListenerExt;
use clara_core::port::{Adapter, Assistant};
use clara_runtime::Engine;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long adapters get to finish their last platform calls at shutdown.
const ADAPTER_GRACE: Duration = Duration::from_secs(5);

/// Serves until a shutdown signal, with `adapters` running in process; the
/// caller then shuts the engine down.
pub async fn run(
    resolved: &Resolved,
    running: &Running,
    adapters: Vec<Box<dyn Adapter>>,
) -> Result<()> {
    let engine = &running.engine;
    let addr = resolved.gateway.addr;
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("cannot listen on {addr} (CLARA_GATEWAY_HOST / CLARA_GATEWAY_PORT); is another Clara running?")
    })?;
    let stop = CancellationToken::new();
    let app = gateway_app(resolved, running, &adapters, &stop)?;
    let assistant: Arc<dyn Assistant> = Arc::new(engine.clone());
    let adapters = crate::adapters::start_all(
        adapters,
        &assistant,
        |platform, sink| engine.attach(platform, sink),
        &stop,
    );
    tracing::info!(
        address = %listener.local_addr().unwrap_or(addr),
        data_dir = %resolved.data_dir.display(),
        model = engine.provider().model(),
        "Clara is running; stop with Ctrl-C"
    );
    // Replies stream as many small writes (WebSocket frames, SSE events): with
    // Nagle's algorithm each could wait 40 ms for the peer's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        if let Err(error) = tcp.set_nodelay(true) {
            tracing::debug!(%error, "cannot set TCP_NODELAY");
        }
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(stop.clone().cancelled_owned());
    let served = tokio::select! {
        served = server => served.context("the gateway stopped"),
        () = crate::shutdown_signal() => Ok(()),
    };
    tracing::info!("shutting down");
    stop.cancel();
    for task in adapters {
        if tokio::time::timeout(ADAPTER_GRACE, task).await.is_err() {
            tracing::warn!("an adapter did not stop in time");
        }
    }
    served
}

/// Everything served on the gateway port.
fn gateway_app(
    resolved: &Resolved,
    running: &Running,
    adapters: &[Box<dyn Adapter>],
    stop: &CancellationToken,
) -> Result<axum::Router> {
    let engine = &running.engine;
    if !resolved.gateway.is_loopback() && !resolved.http.has_password() {
        tracing::warn!(
            "the gateway listens off loopback and web.password (CLARA_WEB_PASSWORD) is not set: nobody can log in to the web page"
        );
    }
    let webhooks = clara_gateway::webhooks::router(
        crate::adapters::webhooks(adapters),
        clara_gateway::webhooks::WebhookConfig::default(),
    )
    .context("the adapters' webhook routes")?;
    Ok(axum::Router::new()
        .merge(gateway_protocol(resolved, engine, adapters, stop))
        .merge(webhooks)
        .merge(clara_gateway::http::router(
            clara_gateway::http::HttpDeps {
                engine: engine.clone(),
                store: running.store.clone(),
                memory: running.memory.clone(),
                tool_servers: tool_servers(resolved, engine),
            },
            resolved.http.clone(),
            stop.clone(),
        )))
}

/// The MCP servers as the web page's Tools panel shows them, when this build
/// has MCP.
#[cfg(feature = "mcp")]
fn tool_servers(
    resolved: &Resolved,
    engine: &Engine,
) -> Option<Arc<dyn clara_gateway::http::ToolServers>> {
    match resolved.sections.section::<clara_mcp::McpSettings>("mcp") {
        Ok(settings) => Some(Arc::new(mcp_servers::McpServers {
            settings,
            tools: engine.tools().clone(),
        })),
        Err(error) => {
            tracing::warn!(%error, "the web page cannot show the MCP servers");
            None
        }
    }
}

#[cfg(not(feature = "mcp"))]
fn tool_servers(_: &Resolved, _: &Engine) -> Option<Arc<dyn clara_gateway::http::ToolServers>> {
    None
}

/// The web page's view of the MCP servers: what is configured (`clara.toml`
/// and the files of `servers_dir`), with the state, tools and restarts the MCP
/// manager of this process publishes in its status file (within two seconds
/// of a change); before its first write, the tools each server has in this
/// process's registry.
#[cfg(feature = "mcp")]
mod mcp_servers {
    use clara_gateway::http::{ToolServerStatus, ToolServers};
    use clara_mcp::files::{self, FileError};
    use clara_mcp::{McpSettings, ServerConfig, Transport};
    use clara_tools::ToolRegistry;
    use std::collections::BTreeMap;

    pub(super) struct McpServers {
        pub(super) settings: McpSettings,
        pub(super) tools: ToolRegistry,
    }

    impl McpServers {
        /// Every configured server: `clara.toml`'s first, then the files (a
        /// file naming a server already configured is skipped, as the
        /// manager does).
        fn configured(&self) -> BTreeMap<String, ServerConfig> {
            let mut servers: BTreeMap<String, ServerConfig> = self
                .settings
                .servers
                .iter()
                .map(|c| (c.name.clone(), c.clone()))
                .collect();
            if let Some(dir) = &self.settings.servers_dir {
                for config in files::read_dir(dir).0 {
                    servers.entry(config.name.clone()).or_insert(config);
                }
            }
            servers
        }
    }

    fn transport(config: &ServerConfig) -> &'static str {
        match config.transport() {
            Transport::Stdio => "stdio",
            Transport::Http => "http",
        }
    }

    impl ToolServers for McpServers {
        fn status(&self) -> Vec<ToolServerStatus> {
            let snapshot = self.tools.snapshot();
            // The manager's own view (states, errors, logins, restarts), which
            // it writes to the servers directory as it changes.
            let live = self
                .settings
                .servers_dir
                .as_deref()
                .and_then(clara_mcp::status_file::read)
                .filter(|l| l.pid == std::process::id());
            self.configured()
                .into_values()
                .map(|config| {
                    if let Some(server) = live
                        .as_ref()
                        .and_then(|l| l.servers.iter().find(|s| s.name == config.name))
                    {
                        return ToolServerStatus {
                            transport: transport(&config).to_owned(),
                            state: server.state.clone(),
                            detail: server.detail.clone(),
                            enabled: config.enabled,
                            tools: server.tools.clone(),
                            restarts: server.restarts,
                            source: config.source.clone(),
                            name: config.name,
                        };
                    }
                    let prefix = format!("{}__", config.name);
                    let tools: Vec<String> = snapshot
                        .names()
                        .filter(|n| n.starts_with(&prefix))
                        .map(str::to_owned)
                        .collect();
                    let (state, detail) = match (config.enabled, tools.len()) {
                        (false, _) => ("disabled", "disabled".to_owned()),
                        (true, 0) => (
                            "not_ready",
                            "enabled, no tools yet (starting, failed or waiting for a login: see Clara's log)".to_owned(),
                        ),
                        (true, 1) => ("ready", "ready, 1 tool".to_owned()),
                        (true, n) => ("ready", format!("ready, {n} tools")),
                    };
                    ToolServerStatus {
                        transport: transport(&config).to_owned(),
                        state: state.to_owned(),
                        detail,
                        enabled: config.enabled,
                        tools,
                        restarts: 0,
                        source: config.source.clone(),
                        name: config.name,
                    }
                })
                                // Clara's own servers without tools (the sandbox whose
                // self-test failed), so the owner learns why.
                .chain(self.tools.unavailable().into_iter().map(|(name, why)| ToolServerStatus {
                    name,
                    transport: "built-in".to_owned(),
                    state: "failed".to_owned(),
                    detail: why,
                    enabled: true,
                    ..ToolServerStatus::default()
                }))
                .collect()
        }

        fn can_set_enabled(&self) -> bool {
            self.settings.servers_dir.is_some()
        }

        fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), String> {
            let Some(dir) = &self.settings.servers_dir else {
                return Err("There is no servers directory (mcp.servers_dir) to change.".to_owned());
            };
            match files::set_enabled(dir, name, enabled) {
                Ok(()) => Ok(()),
                Err(FileError::NotFound(_))
                    if self.settings.servers.iter().any(|s| s.name == name) =>
                {
                    Err(format!(
                        "{name} is configured in clara.toml; change `enabled` there."
                    ))
                }
                Err(error) => Err(error.to_string()),
            }
        }
    }
}

/// The WebSocket gateway protocol for adapters in other processes (`/gateway`).
fn gateway_protocol(
    resolved: &Resolved,
    engine: &Engine,
    adapters: &[Box<dyn Adapter>],
    stop: &CancellationToken,
) -> axum::Router {
    use clara_gateway::server;
    use clara_protocol::GatewaySecret;
    let mut config = server::ServerConfig {
        secret: resolved
            .gateway
            .secret
            .as_ref()
            .map(|s| GatewaySecret::new(s.clone())),
        ..server::ServerConfig::default()
    };
    // The adapters running in this process: a remote adapter of the same
    // platform would take their replies and poll the same bot account.
    config
        .reserved_platforms
        .extend(adapters.iter().map(|a| a.platform().to_owned()));
    let host: std::sync::Arc<dyn server::AdapterHost> = std::sync::Arc::new(engine.clone());
    server::router(host, config, stop.clone())
}
