//! Clara's own MCP management tools, offered under server `mcp`
//! (`mcp__list`, `mcp__install`, `mcp__enable`, `mcp__disable`): the model
//! can see the servers and, with the owner's approval, add or switch them.
//!
//! They change the files of `servers_dir` exactly as `clara mcp …` does and
//! then ask the manager to reconcile, so a change takes effect at once (the
//! manager's poller would see it within seconds anyway). `install` downloads
//! and will run code, so it says [`Effect::Execute`]; `enable`/`disable`
//! change what Clara keeps ([`Effect::Write`]); the approval policy asks the
//! owner about both. Only `list` runs freely.

use crate::config::{McpSettings, ServerConfig};
use crate::files::{self, FileError};
use crate::install::{self, Source};
use crate::manager::McpManager;
use async_trait::async_trait;
use clara_tools::{Effect, Tool, ToolContext, ToolError, ToolTraits};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;

/// Which management tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    List,
    Install,
    Enable,
    Disable,
}

/// What every management tool shares.
struct Shared {
    manager: McpManager,
    dir: PathBuf,
    /// Only the Smithery settings (`install smithery:…` needs them).
    smithery: McpSettings,
}

/// One management tool.
struct ManageTool {
    kind: Kind,
    shared: Arc<Shared>,
}

/// The management tools for `manager`, writing server files in `dir`
/// (`servers_dir`); `settings` gives the Smithery registry and key for
/// `install smithery:…`. Give them to [`McpManager::provider_with_tools`].
pub fn management_tools(
    manager: McpManager,
    dir: PathBuf,
    settings: &McpSettings,
) -> Vec<Arc<dyn Tool>> {
    let shared = Arc::new(Shared {
        manager,
        dir,
        smithery: McpSettings {
            smithery_api_key: settings.smithery_api_key.clone(),
            smithery_url: settings.smithery_url.clone(),
            ..McpSettings::default()
        },
    });
    [Kind::List, Kind::Install, Kind::Enable, Kind::Disable]
        .into_iter()
        .map(|kind| {
            Arc::new(ManageTool {
                kind,
                shared: Arc::clone(&shared),
            }) as Arc<dyn Tool>
        })
        .collect()
}

fn name_schema(what: &str) -> Value {
    json!({
        "type": "object",
        "properties": {"name": {"type": "string", "description": what}},
        "required": ["name"],
        "additionalProperties": false
    })
}

/// A required string argument.
fn arg<'a>(arguments: &'a Value, key: &str) -> Result<&'a str, ToolError> {
    arguments
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| ToolError::InvalidArguments(format!("{key:?} (a string) is required")))
}

#[async_trait]
impl Tool for ManageTool {
    fn name(&self) -> &str {
        match self.kind {
            Kind::List => "list",
            Kind::Install => "install",
            Kind::Enable => "enable",
            Kind::Disable => "disable",
        }
    }

    fn description(&self) -> &str {
        match self.kind {
            Kind::List => {
                "List the MCP servers Clara knows: each one's state (ready, starting, failed, disabled), where it came from, and its tools."
            }
            Kind::Install => {
                "Install an MCP server and start using it (the owner is asked first). source: npm:PACKAGE[@VERSION], pypi:PACKAGE[==VERSION], local:COMMAND [ARGS], an https:// URL, or smithery:OWNER/NAME. name: what to call it (letters, digits, - and _; at most 24). Versions are pinned to the latest when left out."
            }
            Kind::Enable => "Start using an installed MCP server that was disabled.",
            Kind::Disable => {
                "Stop using an MCP server (it stays installed and can be enabled again)."
            }
        }
    }

    fn parameters(&self) -> Value {
        match self.kind {
            Kind::List => {
                json!({"type": "object", "properties": {}, "additionalProperties": false})
            }
            Kind::Install => json!({
                "type": "object",
                "properties": {
                    "source": {"type": "string", "description": "npm:@scope/pkg@1.2.3, pypi:pkg==1.0, local:/path/to/server --flag, https://host/mcp or smithery:owner/name"},
                    "name": {"type": "string", "description": "The server's name in Clara, e.g. time"},
                    "args": {"type": "array", "items": {"type": "string"}, "description": "Extra arguments for the server's program (e.g. the folder a filesystem server may use)"}
                },
                "required": ["source", "name"],
                "additionalProperties": false
            }),
            Kind::Enable => name_schema("The server to enable"),
            Kind::Disable => name_schema("The server to disable"),
        }
    }

    fn traits(&self) -> ToolTraits {
        match self.kind {
            // Its text holds servers' tool names and error messages: data
            // from outside Clara.
            Kind::List => ToolTraits {
                effect: Effect::Read,
                untrusted_output: true,
                definition_sha256: None,
            },
            Kind::Install => ToolTraits {
                effect: Effect::Execute,
                ..ToolTraits::default()
            },
            Kind::Enable | Kind::Disable => ToolTraits {
                effect: Effect::Write,
                ..ToolTraits::default()
            },
        }
    }

    async fn call(&self, arguments: Value, _context: &ToolContext) -> Result<String, ToolError> {
        match self.kind {
            Kind::List => Ok(self.list()),
            Kind::Install => {
                let source = Source::parse(arg(&arguments, "source")?)
                    .map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
                let name = arg(&arguments, "name")?.to_owned();
                let extra = match arguments.get("args") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(v) => serde_json::from_value::<Vec<String>>(v.clone()).map_err(|_| {
                        ToolError::InvalidArguments("\"args\" must be a list of strings".to_owned())
                    })?,
                };
                self.install(source, name, extra).await
            }
            Kind::Enable => self.switch(arg(&arguments, "name")?, true).await,
            Kind::Disable => self.switch(arg(&arguments, "name")?, false).await,
        }
    }
}

impl ManageTool {
    fn list(&self) -> String {
        let servers = self.shared.manager.status();
        if servers.is_empty() {
            return "No MCP server is configured.".to_owned();
        }
        let mut out = String::new();
        for s in servers {
            out.push_str(&format!("{}: {}", s.name, s.state.describe()));
            if let Some(source) = &s.source {
                out.push_str(&format!(" (from {source})"));
            }
            if !s.tools.is_empty() {
                out.push_str(&format!("; tools: {}", s.tools.join(", ")));
            }
            out.push('\n');
        }
        out.truncate(out.trim_end().len());
        out
    }

    /// Installs and writes the server file. The work runs in its own task, so
    /// a long npm or pip install that outlasts the tool call's time limit
    /// still finishes (and its server then starts) instead of being killed
    /// half-way.
    async fn install(
        &self,
        source: Source,
        name: String,
        extra: Vec<String>,
    ) -> Result<String, ToolError> {
        install::check_name(&name).map_err(|e| ToolError::InvalidArguments(e.to_string()))?;
        if self.exists(&name) {
            return Err(ToolError::Failed(format!(
                "a server named {name:?} already exists; pick another name or remove it first"
            )));
        }
        let shared = Arc::clone(&self.shared);
        let recorded = source.recorded();
        let task = tokio::spawn(async move {
            let mut config =
                install::install(&source, &name, &shared.dir, &shared.smithery).await?;
            install::add_args(&mut config, extra)?;
            files::write_server_file(&shared.dir, &config)?;
            shared.manager.reconcile().await;
            Ok::<ServerConfig, install::InstallError>(config)
        });
        let config = task
            .await
            .map_err(|e| ToolError::Failed(format!("the installation stopped: {e}")))?
            .map_err(|e| ToolError::Failed(e.to_string()))?;
        Ok(format!(
            "Installed {} from {}; it is starting now (see mcp list for its tools).",
            config.name,
            config.source.as_deref().unwrap_or(&recorded)
        ))
    }

    fn exists(&self, name: &str) -> bool {
        files::server_file(&self.shared.dir, name).exists()
            || self
                .shared
                .manager
                .configured()
                .iter()
                .any(|c| c.name == name)
    }

    async fn switch(&self, name: &str, enabled: bool) -> Result<String, ToolError> {
        let word = if enabled { "enabled" } else { "disabled" };
        match files::set_enabled(&self.shared.dir, name, enabled) {
            Ok(()) => {}
            Err(FileError::NotFound(_))
                if self
                    .shared
                    .manager
                    .configured()
                    .iter()
                    .any(|c| c.name == name) =>
            {
                return Err(ToolError::Failed(format!(
                    "{name} is configured in clara.toml, so only the owner can change it there"
                )));
            }
            Err(FileError::NotFound(_)) => {
                return Err(ToolError::Failed(format!(
                    "there is no MCP server named {name:?} (mcp list shows them)"
                )));
            }
            Err(e) => return Err(ToolError::Failed(e.to_string())),
        }
        self.shared.manager.reconcile().await;
        Ok(format!("{name} is {word}."))
    }
}
