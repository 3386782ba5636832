//! The one interface every source of tools plugs in through.
//!
//! A [`ToolProvider`] serves the tools of one *server*: the built-ins (`clara`),
//! the memory tools (`memory`), and later each MCP server, the sandbox, web
//! search, GitHub, e-mail. The registry names its tools `{server}__{tool}`.
//!
//! A provider whose list changes while Clara runs (an MCP server that announces
//! `tools/list_changed`, restarts or goes away) is handed a
//! [`WeakToolRegistry`] when it is added, and publishes each new list with
//! [`ToolRegistry::set_server`](crate::ToolRegistry::set_server) (or withdraws
//! with [`ToolRegistry::remove_server`](crate::ToolRegistry::remove_server)).
//! Replies already running keep the set they started with; the next reply sees
//! the change.
//!
//! A [`ToolIntegration`] is a configurable source of providers: a
//! [`Component`] with a `clara.toml` section of its own. The binary reads the
//! section and asks the integration for its providers, exactly as it asks a
//! platform for its adapter.

use crate::registry::WeakToolRegistry;
use crate::tool::{Tool, ToolError};
use async_trait::async_trait;
use clara_core::component::{Component, ConfigError};
use std::sync::Arc;

/// A source of tools, all named under one server.
#[async_trait]
pub trait ToolProvider: Send + Sync + 'static {
    /// The server its tools are offered under: `clara` gives `clara__current_time`.
    fn server(&self) -> &str;

    /// Its tools as they are now. Called when the provider is added to a
    /// registry and whenever it is [refreshed](crate::ToolRegistry::refresh).
    /// This is where a provider that talks to something outside Clara connects.
    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError>;

    /// Called once, when the provider is added to `registry` (before its first
    /// [`ToolProvider::tools`]). A provider whose tool list can change while
    /// Clara runs keeps the handle and publishes each new list through it; the
    /// handle is weak, so a provider held by its own tools makes no cycle. The
    /// default ignores it: the list is fixed.
    fn attached(&self, registry: WeakToolRegistry) {
        let _ = registry;
    }
}

/// A tool integration: a [`Component`] (its `clara.toml` section and
/// environment variables) that yields tool providers, the way a platform
/// yields an adapter.
pub trait ToolIntegration: Component {
    /// The providers these settings describe: none when the settings do not
    /// enable the integration, several when they name several servers (MCP).
    /// Checks every value, so a typo stops start-up with the key named, but
    /// makes no network call and starts no process: that happens when the
    /// registry first asks a provider for its [tools](ToolProvider::tools).
    fn providers(settings: Self::Settings) -> Result<Vec<Arc<dyn ToolProvider>>, ConfigError>;
}

/// A fixed list of tools under one server: the simplest provider.
pub struct StaticTools {
    server: String,
    tools: Vec<Arc<dyn Tool>>,
}

impl StaticTools {
    /// `tools`, offered under `server`.
    pub fn new(server: impl Into<String>, tools: Vec<Arc<dyn Tool>>) -> Self {
        Self {
            server: server.into(),
            tools,
        }
    }
}

#[async_trait]
impl ToolProvider for StaticTools {
    fn server(&self) -> &str {
        &self.server
    }

    async fn tools(&self) -> Result<Vec<Arc<dyn Tool>>, ToolError> {
        Ok(self.tools.clone())
    }
}
