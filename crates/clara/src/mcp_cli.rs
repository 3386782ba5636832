//! `clara mcp …`: add, list, remove, enable, disable and probe MCP servers.
//!
//! Servers added here are files in `servers_dir` (`<data dir>/mcp` unless
//! `MCP_SERVERS_DIR` says otherwise), one `<name>.toml` each; a running Clara
//! re-reads that directory every two seconds, so a change here takes effect
//! there without a restart. Servers written in `clara.toml`
//! (`[[mcp.servers]]`) are listed too but changed only in that file.
//!
//! `list` shows what is configured and enabled, not whether a running Clara
//! has the server up (that process's live state is not reachable from here);
//! `probe` starts a server once to show that it works and what tools it has.

use anyhow::{Context, Result, bail};
use clara_core::Secret;
use clara_mcp::files::{self, FileError};
use clara_mcp::install::{self, Source};
use clara_mcp::smithery::SmitheryClient;
use clara_mcp::{McpSettings, ServerConfig};
use std::path::{Path, PathBuf};

/// `clara mcp`.
#[derive(clap::Args, Debug)]
pub struct McpCommand {
    #[command(subcommand)]
    action: McpAction,
}

#[derive(clap::Subcommand, Debug)]
enum McpAction {
    /// Install a server and add it (a running Clara starts it within seconds).
    ///
    /// SOURCE is npm:PACKAGE[@VERSION], pypi:PACKAGE[==VERSION],
    /// local:COMMAND [ARGS] (quoted), an https:// URL, or smithery:OWNER/NAME.
    /// A missing version is pinned to the latest. Arguments after `--` are
    /// passed to the server's program.
    Add {
        /// Its name in Clara: its tools are offered as NAME__tool.
        name: String,
        /// Where it comes from.
        source: String,
        /// An environment variable the server gets (repeatable); nothing else
        /// of Clara's environment reaches it.
        #[arg(long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
        env: Vec<(String, String)>,
        /// Add it without starting it (`clara mcp enable NAME` later).
        #[arg(long)]
        disabled: bool,
        /// Arguments for the server's program.
        #[arg(last = true, value_name = "ARGS")]
        args: Vec<String>,
    },
    /// List the configured servers.
    List {
        /// JSON for scripts instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Remove a server added with `add` (and its installed package).
    Remove {
        /// The server.
        name: String,
    },
    /// Start using a disabled server.
    Enable {
        /// The server.
        name: String,
    },
    /// Stop using a server, keeping it installed.
    Disable {
        /// The server.
        name: String,
    },
    /// Start a server once, list its tools and stop it.
    Probe {
        /// The server.
        name: String,
    },
    /// Search Smithery's registry (needs SMITHERY_API_KEY).
    Search {
        /// What to look for.
        query: String,
        /// At most this many.
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: u32,
    },
    /// Sign in to a server that uses OAuth (prints a link to open).
    Login {
        /// The server.
        name: String,
    },
    /// Forget a server's OAuth tokens.
    Logout {
        /// The server.
        name: String,
    },
}

fn parse_env(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE".to_owned())?;
    let key_ok = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !key_ok {
        return Err(format!("{key:?} is not an environment variable name"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

/// Runs `clara mcp …` on the server files of `dir` (`servers_dir`), with the
/// `[mcp]` settings (`clara.toml` servers, Smithery's registry and key).
pub async fn run(cmd: McpCommand, dir: PathBuf, settings: &McpSettings) -> Result<()> {
    match cmd.action {
        McpAction::Add {
            name,
            source,
            env,
            disabled,
            args,
        } => add(&dir, settings, &name, &source, env, disabled, args).await,
        McpAction::List { json } => list(&dir, settings, json),
        McpAction::Remove { name } => remove(&dir, settings, &name),
        McpAction::Enable { name } => switch(&dir, settings, &name, true),
        McpAction::Disable { name } => switch(&dir, settings, &name, false),
        McpAction::Probe { name } => probe(&dir, settings, &name).await,
        McpAction::Search { query, limit } => search(settings, &query, limit).await,
        McpAction::Login { name } => login(&dir, settings, &name).await,
        McpAction::Logout { name } => {
            install::check_name(&name).map_err(sentence)?;
            clara_mcp::credentials::Credentials::new(&dir)
                .map_err(sentence)?
                .remove(&name)
                .await
                .map_err(sentence)?;
            println!("Signed out of {name:?}: its tokens are deleted.");
            Ok(())
        }
    }
}

/// The configuration of server `name`: from `clara.toml`, else its file.
fn server(dir: &Path, settings: &McpSettings, name: &str) -> Result<ServerConfig> {
    install::check_name(name).map_err(sentence)?;
    match inline(settings, name) {
        Some(config) => Ok(config.clone()),
        None => {
            let file = files::server_file(dir, name);
            if !file.exists() {
                bail!("there is no MCP server named {name:?} (see clara mcp list)");
            }
            files::read_server_file(&file).map_err(sentence)
        }
    }
}

/// Signs in to a remote server with OAuth: prints the link to open, waits for
/// the browser to come back to a one-shot listener on 127.0.0.1, and stores
/// the tokens encrypted; a running Clara connects within a second.
async fn login(dir: &Path, settings: &McpSettings, name: &str) -> Result<()> {
    let config = server(dir, settings, name)?;
    clara_mcp::oauth::login_interactive(&config, dir)
        .await
        .map_err(sentence)?;
    println!("Signed in to {name:?}; a running Clara connects to it now.");
    Ok(())
}

/// Whether `name` is a server of `clara.toml`.
fn inline<'a>(settings: &'a McpSettings, name: &str) -> Option<&'a ServerConfig> {
    settings.servers.iter().find(|s| s.name == name)
}

/// A library error as one sentence: `clara: {error:#}` would repeat the
/// causes its message already holds.
fn sentence(error: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("{error}")
}

#[allow(clippy::too_many_arguments)]
async fn add(
    dir: &Path,
    settings: &McpSettings,
    name: &str,
    source: &str,
    env: Vec<(String, String)>,
    disabled: bool,
    args: Vec<String>,
) -> Result<()> {
    install::check_name(name).map_err(sentence)?;
    if inline(settings, name).is_some() {
        bail!("a server named {name:?} is already configured in clara.toml");
    }
    if files::server_file(dir, name).exists() {
        bail!("a server named {name:?} already exists; remove it first (clara mcp remove {name})");
    }
    let source = Source::parse(source).map_err(sentence)?;
    if source.downloads_code() {
        eprintln!("Installing {} …", source.recorded());
    }
    let mut config = install::install(&source, name, dir, settings)
        .await
        .map_err(sentence)?;
    install::add_args(&mut config, args).map_err(sentence)?;
    config.env = env.into_iter().map(|(k, v)| (k, Secret::new(v))).collect();
    config.enabled = !disabled;
    let file = files::write_server_file(dir, &config).map_err(sentence)?;
    let from = config.source.as_deref().unwrap_or("local");
    if disabled {
        println!(
            "Added {name} ({from}), disabled, in {}; enable it with `clara mcp enable {name}`.",
            file.display()
        );
    } else {
        println!(
            "Added {name} ({from}) in {}; a running Clara starts it within a few seconds.",
            file.display()
        );
    }
    Ok(())
}

/// One line of `list`.
#[derive(serde::Serialize)]
struct Row {
    name: String,
    enabled: bool,
    transport: &'static str,
    source: String,
    /// `file` (servers_dir) or `clara.toml`.
    configured_in: &'static str,
    /// A server file that could not be read (the reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// What the running Clara says of it, when one is running.
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<clara_mcp::status_file::LiveServer>,
}

fn row(config: &ServerConfig, configured_in: &'static str) -> Row {
    Row {
        name: config.name.clone(),
        enabled: config.enabled,
        transport: match config.transport() {
            clara_mcp::Transport::Stdio => "stdio",
            clara_mcp::Transport::Http => "http",
        },
        source: config.source.clone().unwrap_or_else(|| "-".to_owned()),
        configured_in,
        error: None,
        live: None,
    }
}

fn list(dir: &Path, settings: &McpSettings, json: bool) -> Result<()> {
    let mut rows: Vec<Row> = settings
        .servers
        .iter()
        .map(|c| row(c, "clara.toml"))
        .collect();
    let (configs, errors) = files::read_dir(dir);
    rows.extend(configs.iter().map(|c| row(c, "file")));
    rows.extend(errors.into_iter().map(|e| {
        Row {
            name: match &e {
                FileError::Io { path, .. }
                | FileError::Parse { path, .. }
                | FileError::Invalid { path, .. } => path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                FileError::NotFound(name) => name.clone(),
            },
            enabled: false,
            transport: "-",
            source: "-".to_owned(),
            configured_in: "file",
            error: Some(e.to_string()),
            live: None,
        }
    }));
    let running = clara_mcp::status_file::read(dir);
    if let Some(running) = &running {
        for r in &mut rows {
            r.live = running.servers.iter().find(|s| s.name == r.name).cloned();
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    if rows.is_empty() {
        println!(
            "No MCP server is configured. Add one with `clara mcp add NAME SOURCE` (servers dir: {}).",
            dir.display()
        );
        return Ok(());
    }
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<width$}  {:<8}  {:<9}  {:<10}  SOURCE",
        "NAME", "STATE", "TRANSPORT", "IN"
    );
    for r in &rows {
        let state = match (&r.error, r.enabled) {
            (Some(_), _) => "broken",
            (None, true) => "enabled",
            (None, false) => "disabled",
        };
        println!(
            "{:<width$}  {:<8}  {:<9}  {:<10}  {}",
            r.name, state, r.transport, r.configured_in, r.source
        );
        if let Some(error) = &r.error {
            println!("{:<width$}  ({error})", "");
        }
        if let Some(live) = &r.live {
            let restarts = match live.restarts {
                0 => String::new(),
                1 => ", restarted once".to_owned(),
                n => format!(", restarted {n} times"),
            };
            println!("{:<width$}  now: {}{restarts}", "", live.detail);
        }
    }
    match &running {
        Some(running) => println!("(\"now\": the running Clara, pid {})", running.pid),
        None => println!(
            "(no Clara is running with this servers directory; `clara mcp probe NAME` starts a server once to check it)"
        ),
    }
    Ok(())
}

fn remove(dir: &Path, settings: &McpSettings, name: &str) -> Result<()> {
    install::check_name(name).map_err(sentence)?;
    if !files::remove_server_file(dir, name).map_err(sentence)? {
        if inline(settings, name).is_some() {
            bail!("{name} is configured in clara.toml; remove it there");
        }
        bail!("there is no MCP server named {name:?} (see clara mcp list)");
    }
    let package = install::package_dir(dir, name);
    if package.exists() {
        std::fs::remove_dir_all(&package).with_context(|| {
            format!(
                "{name} was removed, but not its files in {}",
                package.display()
            )
        })?;
    }
    println!("Removed {name}; a running Clara stops it within a few seconds.");
    Ok(())
}

fn switch(dir: &Path, settings: &McpSettings, name: &str, enabled: bool) -> Result<()> {
    install::check_name(name).map_err(sentence)?;
    match files::set_enabled(dir, name, enabled) {
        Ok(()) => {}
        Err(FileError::NotFound(_)) if inline(settings, name).is_some() => {
            bail!("{name} is configured in clara.toml; change `enabled` there")
        }
        Err(FileError::NotFound(_)) => {
            bail!("there is no MCP server named {name:?} (see clara mcp list)")
        }
        Err(e) => return Err(sentence(e)),
    }
    let word = if enabled { "enabled" } else { "disabled" };
    println!("{name} is {word}; a running Clara follows within a few seconds.");
    Ok(())
}

async fn probe(dir: &Path, settings: &McpSettings, name: &str) -> Result<()> {
    let config = server(dir, settings, name)?;
    let homes = settings
        .homes_dir
        .clone()
        .unwrap_or_else(|| dir.join(".home"));
    let report = install::probe(&config, &homes.join(name))
        .await
        .map_err(sentence)?;
    let who = match (report.server_name.as_str(), report.version.as_str()) {
        ("", _) => String::new(),
        (server, "") => format!(" ({server})"),
        (server, version) => format!(" ({server} {version})"),
    };
    println!("{name}{who} works: {} tools.", report.tools.len());
    for tool in &report.tools {
        println!("  {tool}");
    }
    Ok(())
}

async fn search(settings: &McpSettings, query: &str, limit: u32) -> Result<()> {
    let client = SmitheryClient::new(settings).map_err(sentence)?;
    let servers = client.search(query, limit).await.map_err(sentence)?;
    if servers.is_empty() {
        println!("Smithery has no server matching {query:?}.");
    }
    for s in servers {
        let about = s
            .description
            .as_deref()
            .unwrap_or("")
            .lines()
            .next()
            .unwrap_or("");
        println!("smithery:{}  {about}", s.qualified_name);
    }
    Ok(())
}
