//! MCP servers as Clara's tool providers.
//!
//! Clara is an MCP *client*: each configured server (`[[mcp.servers]]` in
//! `clara.toml`, or a `<name>.toml` file in `servers_dir`) is a child process
//! speaking stdio or a streamable-HTTP endpoint, and its tools are offered to
//! the model as `{server}__{tool}` through the shared
//! [`ToolRegistry`](clara_tools::ToolRegistry).
//!
//! - [`Mcp`] is the [`ToolIntegration`]: it checks the `[mcp]` section and
//!   gives one provider, the [`McpManager`]'s (server `mcp`, home of the
//!   management tools). Adding it to a registry starts everything.
//! - [`McpManager`] runs one [supervisor](supervisor) per enabled server,
//!   re-reads `servers_dir` every two seconds when it changed (hot reload),
//!   and reports each server's [`ServerStatus`].
//! - A supervisor connects ([`client`]), lists the tools, publishes them with
//!   `set_server`, lists again on `tools/list_changed`, on reconnect and every
//!   `refresh_secs`, and restarts a crashed server with backoff.
//! - [`files`] writes and removes server files atomically, for the CLI and
//!   the management tools.
//! - [`oauth`] logs in to HTTP servers that answer `401` (discovery, dynamic
//!   registration, PKCE, refresh); [`credentials`] keeps their tokens
//!   encrypted under `servers_dir/.credentials`. Such a server waits in
//!   `NeedsAuth` until a login stores tokens.
//!
//! Invariants:
//! - A stdio server sees only its configured environment, a minimal `PATH`
//!   and its own `HOME`: Clara's keys never reach it. It runs in its own
//!   process group, killed as a whole when it is stopped, removed, disabled,
//!   restarted or Clara shuts down. Its stderr is logged, never inherited.
//! - Everything a server says is untrusted: its results are marked
//!   `untrusted_output`, its definitions are hashed for pinning
//!   (`definition_sha256`), and its annotations can only make Clara more
//!   careful (never below [`Effect::Write`](clara_tools::Effect::Write)).
//! - A call whose connection broke is reported to the model, never replayed.
//! - Tool names always fit `^[a-zA-Z0-9_-]{1,64}$` ([`names`]); calls send
//!   the server's original name.
//! - No secret (env value, token) appears in a log line, an error or `Debug`.

pub mod client;
pub mod config;
pub mod credentials;
pub mod files;
pub mod install;
pub mod manage_tools;
pub mod manager;
pub mod names;
pub mod oauth;
pub mod smithery;
pub mod status_file;
pub mod supervisor;
pub mod tool;

pub use config::{McpSettings, ServerConfig, Transport};
pub use files::{FileError, remove_server_file, set_enabled, write_server_file};
pub use manager::{MANAGER_SERVER, McpManager};
pub use supervisor::{ServerState, ServerStatus};
pub use tool::McpTool;

use clara_core::component::{Component, ConfigError, EnvKey};
use clara_tools::{ToolIntegration, ToolProvider};
use std::path::Path;
use std::sync::Arc;

/// The MCP integration: section `[mcp]`.
pub struct Mcp;

impl Component for Mcp {
    const NAME: &'static str = "mcp";
    const ENV: &'static [EnvKey] = &[
        ("MCP_SERVERS_DIR", "servers_dir"),
        ("SMITHERY_API_KEY", "smithery_api_key"),
    ];
    type Settings = McpSettings;
}

impl Mcp {
    /// The manager for `settings`, for a binary that needs the handle (for
    /// `status()`, `reconcile()` or `shutdown()`): add its
    /// [`McpManager::provider`] to the registry instead of calling
    /// [`ToolIntegration::providers`]. Starts nothing.
    pub fn manager(settings: &McpSettings) -> Result<McpManager, ConfigError> {
        McpManager::new(settings)
    }
}

impl ToolIntegration for Mcp {
    /// One provider, the manager's (server `mcp`), with Clara's management
    /// tools (`mcp__list`, `mcp__install`, `mcp__enable`, `mcp__disable`) when
    /// there is a servers directory for them to write to; its servers start
    /// when it is added to a registry. No process is started and no network is
    /// used here.
    fn providers(settings: McpSettings) -> Result<Vec<Arc<dyn ToolProvider>>, ConfigError> {
        let manager = Mcp::manager(&settings)?;
        let provider = match manager.servers_dir().map(Path::to_path_buf) {
            Some(dir) => manager.provider_with_tools(manage_tools::management_tools(
                manager.clone(),
                dir,
                &settings,
            )),
            None => manager.provider(),
        };
        Ok(vec![provider])
    }
}
