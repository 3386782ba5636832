//! `[mcp]` in `clara.toml`, and one server's configuration (also the format of
//! a file in `MCP_SERVERS_DIR`, which `clara mcp add` writes).

use clara_core::Secret;
use clara_core::component::ConfigError;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `[mcp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct McpSettings {
    /// `[[mcp.servers]]`: servers configured in `clara.toml`.
    pub servers: Vec<ServerConfig>,
    /// A directory of server files (`<name>.toml`, one [`ServerConfig`] each),
    /// watched while Clara runs: `clara mcp add|remove|enable|disable` and the
    /// management tools write here. Environment: `MCP_SERVERS_DIR`. Default:
    /// `<data dir>/mcp` (set by the binary).
    pub servers_dir: Option<PathBuf>,
    /// Seconds one tool call may take before the model is told it timed out
    /// (default 25; `[tools] timeout_secs` bounds every tool call too).
    pub call_timeout_secs: Option<u64>,
    /// Seconds between re-listing every server's tools (besides
    /// `tools/list_changed` and reconnects).
    pub refresh_secs: Option<u64>,
    /// The `clara.toml` these settings were read from, set by Clara itself:
    /// its `[[mcp.servers]]` are read again when the file changes (hot reload).
    pub config_file: Option<PathBuf>,
    /// Smithery's registry key (`SMITHERY_API_KEY`), to install servers from it.
    pub smithery_api_key: Option<Secret>,
    /// Smithery's registry address (for tests and mirrors).
    pub smithery_url: Option<String>,
    /// Where each stdio server gets its own `HOME` (`<homes_dir>/<name>`),
    /// unless its `env` sets one. Default: `<servers_dir>/.home`, or a
    /// directory under the system's temporary directory without `servers_dir`.
    pub homes_dir: Option<PathBuf>,
}

/// One MCP server: a command Clara starts (stdio) or a URL it connects to
/// (streamable HTTP).
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Its name: its tools are offered as `{name}__{tool}`. Letters, digits,
    /// `-` and `_`, at most 24 characters, no `__`.
    pub name: String,
    /// The program to start, for a stdio server.
    #[serde(default)]
    pub command: Option<String>,
    /// Its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The only environment it gets (besides a minimal `PATH` and `HOME`):
    /// Clara's own variables never reach it.
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// The working directory to start it in.
    #[serde(default)]
    pub cwd: Option<PathBuf>,
    /// The endpoint, for a streamable-HTTP server (`https://host/mcp`).
    #[serde(default)]
    pub url: Option<String>,
    /// A bearer token for the HTTP server (when it does not use OAuth).
    #[serde(default)]
    pub bearer_token: Option<Secret>,
    /// Whether Clara uses it; a disabled server is kept but not started.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Where it came from (`npm:@scope/pkg@1.2.3`, `pypi:pkg==1.0`, `local`,
    /// `url`, `smithery:name`), as `clara mcp add` recorded it.
    #[serde(default)]
    pub source: Option<String>,
}

fn yes() -> bool {
    true
}

/// How Clara reaches a server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// A child process speaking JSON-RPC on stdin/stdout.
    Stdio,
    /// Streamable HTTP.
    Http,
}

/// The longest server name: with `__` and a tool name it must stay within the
/// 64 characters every provider accepts.
pub const MAX_SERVER_NAME: usize = 24;

/// Server names Clara's own tools already use: an MCP server may not take them
/// (`mcp` is the manager's own tools, `mcp__list` and the like; `code` and
/// `files` the sandbox's, `web` and `github` the integrations').
pub const RESERVED_SERVER_NAMES: &[&str] =
    &["mcp", "clara", "memory", "code", "files", "web", "github"];

impl ServerConfig {
    /// Which transport it uses. Checked by [`ServerConfig::validate`]: exactly
    /// one of `command` and `url`.
    pub fn transport(&self) -> Transport {
        if self.url.is_some() {
            Transport::Http
        } else {
            Transport::Stdio
        }
    }

    /// Checks the name and that exactly one of `command` and `url` is given.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name = &self.name;
        let name_ok = !name.is_empty()
            && name.len() <= MAX_SERVER_NAME
            && !name.contains("__")
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if RESERVED_SERVER_NAMES.contains(&name.as_str()) {
            return Err(ConfigError::new(format!(
                "[mcp] server name {name:?} is taken by Clara's own tools; choose another"
            )));
        }
        if !name_ok {
            return Err(ConfigError::new(format!(
                "[mcp] server name {name:?} must be 1 to {MAX_SERVER_NAME} letters, digits, '-' or '_', without \"__\""
            )));
        }
        match (&self.command, &self.url) {
            (Some(_), Some(_)) => Err(ConfigError::new(format!(
                "[mcp] server {name:?} has both a command and a url; give one"
            ))),
            (None, None) => Err(ConfigError::new(format!(
                "[mcp] server {name:?} needs a command (stdio) or a url (streamable HTTP)"
            ))),
            (None, Some(url)) if !(url.starts_with("http://") || url.starts_with("https://")) => {
                Err(ConfigError::new(format!(
                    "[mcp] server {name:?}: url must start with http:// or https://"
                )))
            }
            _ => Ok(()),
        }
    }
}
