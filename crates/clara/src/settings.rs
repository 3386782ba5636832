//! Configuration: `clara.toml`, then `CLARA_*` environment variables, then the
//! environment variable names of the system Clara replaces, then command-line flags.
//!
//! Every problem is reported once, at start, in one sentence naming the key and
//! what was expected.

use crate::memory::{self, MemoryChoice, MemorySettings};
use crate::platforms;
use crate::provider::{self, LlmChoice, LlmSettings};
use crate::tools::{self, ToolSettings};
use anyhow::{Context, Result, bail};
use clara_core::Secret;
use clara_core::chunker::ChunkerConfig;
use clara_core::component::{ConfigError, EnvKey};
use clara_core::context::WindowRules;
use clara_core::port::Adapter;
use clara_core::stop::StopPhrases;
use clara_runtime::EngineConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The sections of `clara.toml` the binary itself reads. Each platform (and
/// tool integration) reads its own section (`crate::platforms`). Unknown keys
/// are an error (a typo must not silently fall back to a default): inside a
/// section by `deny_unknown_fields`, at the top by [`check_sections`].
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Where Clara keeps its database and everything else it writes.
    pub data_dir: Option<PathBuf>,
    /// The SQL store.
    pub store: StoreSettings,
    /// The language model.
    pub llm: LlmSettings,
    /// Conversation behaviour.
    pub chat: ChatSettings,
    /// Tools the model may call.
    pub tools: ToolSettings,
    /// Long-term memory.
    pub memory: MemorySettings,
    /// The network face: gateway protocol, HTTP API, web page.
    pub gateway: GatewaySettings,
    /// The web page: login and the person it speaks for.
    pub web: WebSettings,
    /// The HTTP API (`/v1/*`).
    pub api: ApiSettings,
    /// The distributed deployment's queue (`clara gateway`, `clara worker`).
    pub queue: QueueSettings,
}

/// The top-level keys [`Settings`] reads.
const OWN_KEYS: &[&str] = &[
    "data_dir", "store", "llm", "chat", "tools", "memory", "gateway", "web", "api", "queue",
];

/// A component built into this binary (a platform or a tool integration): its
/// section's name, its environment variables and its strict file check.
struct ComponentSection {
    name: &'static str,
    env: &'static [EnvKey],
    check_file: fn(toml::Value) -> Result<(), String>,
}

/// Every component's section, platforms first.
fn components() -> impl Iterator<Item = ComponentSection> {
    let platforms = platforms::built_in().map(|(name, p)| ComponentSection {
        name,
        env: p.env,
        check_file: p.check_file,
    });
    let integrations = tools::INTEGRATIONS.iter().map(|i| ComponentSection {
        name: i.name,
        env: i.env,
        check_file: i.check_file,
    });
    // The file store is a component too: its section and environment
    // variables (`S3_BUCKET`, …) are read the same way.
    let files = std::iter::once(ComponentSection {
        name: <clara_files::Files as clara_core::component::Component>::NAME,
        env: <clara_files::Files as clara_core::component::Component>::ENV,
        check_file: check_section::<clara_files::FilesSettings>,
    });
    // E-mail monitoring (`[email]`, `EMAIL_MONITORING_ENABLED`) needs the
    // store and the outbox, so the binary wires it (`email.rs`), not the
    // tool integrations' list.
    let email = std::iter::once(ComponentSection {
        name: <clara_email::EmailIntegration as clara_core::component::Component>::NAME,
        env: <clara_email::EmailIntegration as clara_core::component::Component>::ENV,
        check_file: check_section::<clara_email::EmailSettings>,
    });
    platforms.chain(integrations).chain(files).chain(email)
}

/// Checks a component's section as written in a `clara.toml` file, strictly.
pub fn check_section<S: serde::de::DeserializeOwned>(section: toml::Value) -> Result<(), String> {
    S::deserialize(section)
        .map(drop)
        .map_err(|e| e.message().to_owned())
}

/// Refuses a top-level key that is neither one of Clara's own sections nor a
/// component's, naming it; a platform this binary was built without is named as such.
fn check_sections<'a>(keys: impl IntoIterator<Item = &'a str>) -> Result<()> {
    for key in keys {
        if OWN_KEYS.contains(&key) || components().any(|c| c.name == key) {
            continue;
        }
        match platforms::named(key) {
            Some(platform) if platform.built.is_some() => continue,
            Some(_) => bail!("[{key}] is configured, but {}", platforms::not_built(key)),
            None => {}
        }
        let mut known: Vec<&str> = OWN_KEYS.to_vec();
        known.extend(components().map(|c| c.name));
        bail!(
            "unknown setting `{key}`; the sections are: {}",
            known.join(", ")
        );
    }
    Ok(())
}

/// The merged configuration (file, then environment), from which each
/// component reads its own section.
pub struct Sections {
    config: config::Config,
}

impl Sections {
    /// Sections read from a `clara.toml` text alone (no environment), for tests.
    #[cfg(test)]
    pub fn from_toml(text: &str) -> Result<Self, config::ConfigError> {
        let config = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Toml))
            .build()?;
        Ok(Self { config })
    }

    /// The same sections, with `key` (`mcp.servers_dir`) set to `value` where
    /// neither the file nor the environment sets it: defaults that depend on
    /// the data directory.
    pub fn with_default(self, key: &str, value: String) -> Result<Self> {
        let config = config::Config::builder()
            .set_default(key, value)
            .with_context(|| format!("the default of {key} could not be applied"))?
            .add_source(self.config)
            .build()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
        Ok(Self { config })
    }

    /// Section `name` as `T`, or `T`'s default when absent; a bad value is one
    /// sentence naming the key (never its value: it may be a token).
    pub fn section<T: serde::de::DeserializeOwned + Default>(
        &self,
        name: &str,
    ) -> Result<T, ConfigError> {
        let value = match self.config.get::<config::Value>(name) {
            Ok(value) => value,
            Err(config::ConfigError::NotFound(_)) => return Ok(T::default()),
            Err(error) => {
                return Err(ConfigError::new(format!(
                    "[{name}]: {}",
                    without_value(&error.to_string())
                )));
            }
        };
        // The path names the key at fault (`discord.max_messages`), which the
        // deserializer's own message does not.
        serde_path_to_error::deserialize(value).map_err(|error| {
            ConfigError::new(format!(
                "[{name}] {}: {}",
                error.path(),
                without_value(&error.inner().to_string())
            ))
        })
    }
}

/// A deserializer's message without the offending value, which may be a
/// secret: `invalid type: string "abc", expected …` keeps `invalid type: string, expected …`.
fn without_value(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(" \"") {
        out.push_str(&rest[..start]);
        match rest[start + 2..].find('"') {
            Some(end) => rest = &rest[start + 2 + end + 1..],
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// `[queue]`: Redis, for `clara gateway` and `clara worker`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// `redis://[:password@]host:port/db` (`REDIS_URL`): it may hold a password.
    pub redis_url: Option<Secret>,
    /// The Redis host, when no URL is given (`REDIS_HOST`).
    pub redis_host: Option<String>,
    /// The Redis port with `redis_host` (`REDIS_PORT`, default 6379).
    pub redis_port: Option<u16>,
    /// Prefix of Clara's keys (default `clara`).
    pub prefix: Option<String>,
    /// Milliseconds a thought held by a silent worker waits before another
    /// worker takes it over (default 10000).
    pub claim_idle_ms: Option<u64>,
    /// Thoughts one worker answers at once (default 32).
    pub worker_concurrency: Option<usize>,
}

/// The queue's resolved settings.
#[derive(Clone, Debug)]
pub struct QueueConfig {
    /// Where Redis is, when configured.
    pub redis_url: Option<Secret>,
    /// Key prefix.
    pub prefix: String,
    /// When a silent worker's thought is taken over.
    pub claim_idle: Duration,
    /// Thoughts one worker answers at once.
    pub worker_concurrency: usize,
}

impl QueueConfig {
    /// The Redis settings, or one sentence saying what is missing.
    pub fn redis(&self) -> Result<clara_runtime::queue::redis::RedisConfig> {
        let Some(url) = &self.redis_url else {
            bail!(
                "REDIS_URL (queue.redis_url) or REDIS_HOST must be set: the gateway and its workers meet in Redis"
            );
        };
        let mut config = clara_runtime::queue::redis::RedisConfig::new(url.expose().to_owned());
        config.prefix.clone_from(&self.prefix);
        config.claim_idle = self.claim_idle;
        Ok(config)
    }
}

/// `[web]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// The name Clara calls the web page's person (default: $USER).
    pub name: Option<String>,
    /// The operator's password, asked off loopback; hashed with Argon2 at start.
    pub password: Option<Secret>,
    /// The password's Argon2 hash instead (`clara hash-password` prints one).
    pub password_hash: Option<Secret>,
    /// Ask for the password on loopback too.
    pub require_login: Option<bool>,
    /// Send the login cookie over HTTPS only (default: on off loopback).
    pub secure_cookie: Option<bool>,
    /// Hours a login lasts.
    pub login_hours: Option<u64>,
    /// The largest file a message on the page may carry, in MiB (default 20).
    pub max_file_mb: Option<usize>,
    /// The most all files of one message may add up to, in MiB (default 40).
    pub max_message_files_mb: Option<usize>,
    /// How many files Clara sent the page keeps to be shown (default 32).
    pub kept_files: Option<usize>,
    /// How many MiB of them it keeps (default 64).
    pub kept_files_mb: Option<usize>,
}

/// `[api]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The key `/v1/*` requests present as `Authorization: Bearer <key>`;
    /// required off loopback.
    pub key: Option<Secret>,
    /// The largest `/v1/chat/completions` body, in bytes.
    pub max_body_bytes: Option<usize>,
}

/// `[gateway]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// The address to listen on (default 127.0.0.1).
    pub host: Option<String>,
    /// The port (default 18789).
    pub port: Option<u16>,
    /// The secret out-of-process adapters present; required off loopback.
    pub secret: Option<Secret>,
}

/// The gateway's resolved settings.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The adapters' shared secret, if set.
    pub secret: Option<Secret>,
}

impl GatewayConfig {
    /// Whether the address is reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

impl Resolved {
    /// Opens (and migrates) the store the settings name: PostgreSQL when
    /// `DATABASE_URL` says so, else the SQLite file.
    pub async fn open_store(&self) -> Result<clara_store::Store, clara_store::StoreError> {
        match &self.postgres_url {
            Some(url) => clara_store::Store::open_url(url).await,
            None => clara_store::Store::open(&self.database).await,
        }
    }

    /// Opens the store without applying migrations (`clara migrate status`).
    pub async fn open_store_unmigrated(
        &self,
    ) -> Result<clara_store::Store, clara_store::StoreError> {
        match &self.postgres_url {
            Some(url) => {
                clara_store::Store::open_url_with(
                    url,
                    clara_store::StoreOptions {
                        migrate: false,
                        ..clara_store::StoreOptions::default()
                    },
                )
                .await
            }
            None => clara_store::Store::open_without_migrating(&self.database).await,
        }
    }
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// A `sqlite:` URL or file path (default `<data_dir>/clara.db`), or a
    /// `postgres://` URL.
    pub database_url: Option<String>,
}

/// `[chat]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// Clara's persona (system prompt).
    pub persona: Option<String>,
    /// Quiet time before a burst is answered, in milliseconds.
    pub quiet_ms: Option<u64>,
    /// Quiet time after a message that clearly ends a thought.
    pub quiet_when_complete_ms: Option<u64>,
    /// The longest a burst is held, in milliseconds.
    pub max_wait_ms: Option<u64>,
    /// Minutes of silence that end a session.
    pub session_idle_minutes: Option<u64>,
    /// Hours of history in the window.
    pub window_hours: Option<u64>,
    /// Messages always in the window when they exist.
    pub window_min_messages: Option<usize>,
    /// Messages never exceeded in the window.
    pub window_max_messages: Option<usize>,
    /// The prompt's token budget.
    pub token_budget: Option<usize>,
    /// Phrases that cancel the reply without a new one.
    pub stop_phrases: Option<Vec<String>>,
    /// The longest message accepted, in characters.
    pub max_message_chars: Option<usize>,
    /// The answer's maximum length in tokens.
    pub max_reply_tokens: Option<u32>,
}

/// Where the configuration came from, for `--config`.
pub struct Sources<'a> {
    /// `--config`, if given.
    pub config_file: Option<&'a Path>,
    /// `--data-dir`, if given.
    pub data_dir: Option<&'a Path>,
}

/// The configuration, resolved.
pub struct Resolved {
    /// The data directory (created at start).
    pub data_dir: PathBuf,
    /// The SQLite file (unused when `postgres_url` is set).
    pub database: PathBuf,
    /// The PostgreSQL database the store lives in, when `DATABASE_URL` names one.
    pub postgres_url: Option<String>,
    /// Engine behaviour.
    pub engine: EngineConfig,
    /// The model that answers, or why the settings name none (reported only by
    /// the commands that need a model: `migrate` does not).
    pub llm: Result<LlmChoice, String>,
    /// The `[tools]` section (`tools::registry` builds the registry from it).
    pub tools: ToolSettings,
    /// Long-term memory (checked even when off: the `memory` commands use it).
    pub memory: MemoryChoice,
    /// The file the settings were read from, if any.
    pub file: Option<PathBuf>,
    /// The network face.
    pub gateway: GatewayConfig,
    /// The web page and the HTTP API.
    pub http: clara_gateway::http::HttpConfig,
    /// The platform adapters the settings enable (a token set), checked and
    /// ready to run; `clara serve` and `clara adapter` take them from here.
    pub adapters: Vec<Box<dyn Adapter>>,
    /// The distributed deployment's queue.
    pub queue: QueueConfig,
    /// The merged file and environment, from which tool integrations read
    /// their sections when the registry is built.
    pub sections: Sections,
}

/// Reads the configuration file and the environment.
pub fn load(sources: &Sources<'_>) -> Result<Resolved> {
    let file = find_config_file(sources.config_file)?;
    let mut builder = config::Config::builder();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        // Parse strictly first, so a misspelt key is reported by name.
        check_file(&text).map_err(|e| anyhow::anyhow!("{}{e}", path.display()))?;
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    for (key, value) in environment() {
        builder = builder
            .set_override(&key, value)
            .with_context(|| format!("{key} could not be applied"))?;
    }
    let config = builder
        .build()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    let top: std::collections::HashMap<String, config::Value> = config
        .clone()
        .try_deserialize()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    check_sections(top.keys().map(String::as_str))?;
    let settings: Settings = config
        .clone()
        .try_deserialize()
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    resolve(settings, Sections { config }, sources, file)
}

/// Checks a `clara.toml` text strictly: Clara's own sections with the line of a
/// bad key, then every platform's section, then the top-level keys. The error
/// starts with what follows the file's name (` line 3 (…): …`, `: [telegram] …`).
fn check_file(text: &str) -> Result<(), String> {
    toml::from_str::<Settings>(text).map_err(|e| file_error(text, &e))?;
    let table: toml::Table = toml::from_str(text).map_err(|e| file_error(text, &e))?;
    for component in components() {
        if let Some(section) = table.get(component.name) {
            (component.check_file)(section.clone())
                .map_err(|e| format!(": [{}] {e}", component.name))?;
        }
    }
    check_sections(table.keys().map(String::as_str)).map_err(|e| format!(": {e}"))
}

/// One sentence for a bad file, after its name: the offending line (which
/// names the key) and what was expected.
fn file_error(text: &str, error: &toml::de::Error) -> String {
    let Some(span) = error.span() else {
        return format!(": {}", error.message());
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    format!(" line {line_no} (`{line}`): {}", error.message())
}

/// Environment variables and the keys they set: the names of the system Clara
/// replaces, and Clara's own.
const ENV_KEYS: &[(&str, &str)] = &[
    ("CLARA_MODELS_DIR", "llm.local.models_dir"),
    ("DATABASE_URL", "store.database_url"),
    ("ROOK_DATABASE_URL", "memory.database_url"),
    ("LLM_PROVIDER", "llm.provider"),
    ("MODEL_TIER", "llm.default_tier"),
    ("AUTO_TIER_SELECTION", "llm.auto_tier"),
    ("CUSTOM_OPENAI_BASE_URL", "llm.openai.base_url"),
    ("CUSTOM_OPENAI_API_KEY", "llm.openai.api_key"),
    ("CUSTOM_OPENAI_MODEL", "llm.openai.model"),
    ("CUSTOM_OPENAI_MODEL_HIGH", "llm.openai.model_high"),
    ("CUSTOM_OPENAI_MODEL_MID", "llm.openai.model_mid"),
    ("CUSTOM_OPENAI_MODEL_LOW", "llm.openai.model_low"),
    ("OPENROUTER_API_KEY", "llm.openrouter.api_key"),
    ("OPENROUTER_MODEL", "llm.openrouter.model"),
    ("OPENROUTER_MODEL_HIGH", "llm.openrouter.model_high"),
    ("OPENROUTER_MODEL_MID", "llm.openrouter.model_mid"),
    ("OPENROUTER_MODEL_LOW", "llm.openrouter.model_low"),
    ("OPENROUTER_SITE_URL", "llm.openrouter.site_url"),
    ("OPENROUTER_APP_NAME", "llm.openrouter.app_name"),
    ("NANOGPT_API_KEY", "llm.nanogpt.api_key"),
    ("NANOGPT_MODEL", "llm.nanogpt.model"),
    ("NANOGPT_MODEL_HIGH", "llm.nanogpt.model_high"),
    ("NANOGPT_MODEL_MID", "llm.nanogpt.model_mid"),
    ("NANOGPT_MODEL_LOW", "llm.nanogpt.model_low"),
    ("ANTHROPIC_API_KEY", "llm.anthropic.api_key"),
    ("ANTHROPIC_BASE_URL", "llm.anthropic.base_url"),
    ("ANTHROPIC_MODEL", "llm.anthropic.model"),
    ("ANTHROPIC_MODEL_HIGH", "llm.anthropic.model_high"),
    ("ANTHROPIC_MODEL_MID", "llm.anthropic.model_mid"),
    ("ANTHROPIC_MODEL_LOW", "llm.anthropic.model_low"),
    ("LLM_API_URL", "llm.ollama.base_url"),
    ("LLM_MODEL", "llm.ollama.model"),
    ("CLARA_GATEWAY_HOST", "gateway.host"),
    ("CLARA_GATEWAY_PORT", "gateway.port"),
    ("CLARA_GATEWAY_SECRET", "gateway.secret"),
    ("CLARA_WEB_PASSWORD", "web.password"),
    ("CLARA_API_KEY", "api.key"),
    ("REDIS_URL", "queue.redis_url"),
    ("REDIS_HOST", "queue.redis_host"),
    ("REDIS_PORT", "queue.redis_port"),
];

/// The overrides the environment makes, in order of increasing precedence: the
/// names above and each platform's, then `CLARA_<SECTION>__<KEY>` (e.g.
/// `CLARA_CHAT__QUIET_MS`).
///
/// Only these are read: an unrelated `CLARA_*` variable is not a setting.
fn environment() -> Vec<(String, String)> {
    let components = components().flat_map(|c| {
        c.env
            .iter()
            .map(move |(env, key)| (*env, format!("{}.{key}", c.name)))
    });
    let mut out: Vec<(String, String)> = ENV_KEYS
        .iter()
        .map(|(env, key)| (*env, (*key).to_owned()))
        .chain(components)
        .filter_map(|(env, key)| env_value(env).map(|v| (key, v)))
        .collect();
    if let (None, Some(key)) = (
        env_value("CUSTOM_OPENAI_API_KEY"),
        env_value("OPENAI_API_KEY"),
    ) {
        out.push(("llm.openai.api_key".to_owned(), key));
    }
    let mut clara: Vec<(String, String)> = std::env::vars()
        .filter_map(|(name, value)| {
            let rest = name.strip_prefix("CLARA_")?;
            rest.contains("__")
                .then(|| (rest.to_ascii_lowercase().replace("__", "."), value))
        })
        .collect();
    clara.sort();
    out.extend(clara);
    out
}

fn env_value(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn find_config_file(explicit: Option<&Path>) -> Result<Option<PathBuf>> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!("--config: no configuration file at {}", path.display());
        }
        return Ok(Some(path.to_owned()));
    }
    let local = PathBuf::from("clara.toml");
    if local.is_file() {
        return Ok(Some(local));
    }
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    Ok(xdg
        .map(|d| d.join("clara").join("clara.toml"))
        .filter(|p| p.is_file()))
}

fn default_data_dir() -> Result<PathBuf> {
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("clara"));
    }
    match std::env::var_os("HOME") {
        Some(home) => Ok(PathBuf::from(home)
            .join(".local")
            .join("share")
            .join("clara")),
        None => bail!(
            "CLARA_DATA_DIR is not set and there is no HOME to put Clara's data under; set CLARA_DATA_DIR or pass --data-dir"
        ),
    }
}

fn resolve(
    s: Settings,
    sections: Sections,
    sources: &Sources<'_>,
    file: Option<PathBuf>,
) -> Result<Resolved> {
    let data_dir = match (sources.data_dir, &s.data_dir) {
        (Some(d), _) => d.to_owned(),
        (None, Some(d)) => d.clone(),
        (None, None) => default_data_dir()?,
    };
    // MCP server files live with Clara's data unless configured elsewhere:
    // `clara mcp add` and a running Clara must agree on the place.
    #[cfg(feature = "mcp")]
    let sections = sections.with_default(
        "mcp.servers_dir",
        data_dir.join("mcp").to_string_lossy().into_owned(),
    )?;
    // Workspaces and the sandbox's Python live with Clara's data unless
    // configured elsewhere.
    #[cfg(feature = "sandbox")]
    let sections = sections
        .with_default(
            "sandbox.workspaces_dir",
            data_dir.join("workspaces").to_string_lossy().into_owned(),
        )?
        .with_default(
            "sandbox.python_env",
            clara_sandbox::python_env::default_path(&data_dir)
                .to_string_lossy()
                .into_owned(),
        )?;
    // A running Clara re-reads `[[mcp.servers]]` when this file changes.
    #[cfg(feature = "mcp")]
    let sections = match &file {
        Some(path) => {
            sections.with_default("mcp.config_file", path.to_string_lossy().into_owned())?
        }
        None => sections,
    };
    let mut postgres_url = None;
    let database = match s.store.database_url.as_deref() {
        None => data_dir.join("clara.db"),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            postgres_url = Some(url.to_owned());
            data_dir.join("clara.db")
        }
        Some(url) => {
            let path = url
                .strip_prefix("sqlite://")
                .or_else(|| url.strip_prefix("sqlite:"))
                .unwrap_or(url);
            let path = path.split('?').next().unwrap_or(path);
            if path.is_empty() || path == ":memory:" {
                bail!("DATABASE_URL (store.database_url) must name a SQLite file, got {url:?}");
            }
            PathBuf::from(path)
        }
    };
    let llm = provider::resolve(&s.llm).map_err(|e| format!("{e:#}"));
    let mut engine = engine_config(&s.chat)?;
    if let Ok(llm) = &llm {
        engine.tiers = llm.tiers.clone();
        engine.default_tier = llm.default_tier;
        engine.auto_tier = llm.auto_tier;
    }
    engine.tool_rounds = s.tools.rounds.unwrap_or(engine.tool_rounds);
    engine.approvals = s.tools.approvals()?;
    let tools = s.tools;
    let memory = memory::resolve(
        &s.memory,
        &memory::MemoryContext {
            llm_settings: &s.llm,
            llm: llm.as_ref().ok(),
            default_models_dir: memory::default_models_dir(),
            openai_api_key: env_value("OPENAI_API_KEY").map(Secret::new),
            prompt_tokens: engine.window.token_budget,
        },
    )?;
    let gateway = gateway_config(&s.gateway)?;
    let http = http_config(&s.web, &s.api, &gateway)?;
    let mut adapters = Vec::new();
    for (_, platform) in platforms::built_in() {
        adapters.extend((platform.adapter)(&sections)?);
    }
    let queue = queue_config(&s.queue)?;
    Ok(Resolved {
        queue,
        adapters,
        sections,
        gateway,
        http,
        engine,
        llm,
        tools,
        memory,
        data_dir,
        database,
        postgres_url,
        file,
    })
}

fn queue_config(q: &QueueSettings) -> Result<QueueConfig> {
    let trimmed = |v: &Option<String>| {
        v.as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let redis_url = match (Secret::given(q.redis_url.as_ref()), trimmed(&q.redis_host)) {
        (Some(url), _) => {
            let text = url.expose();
            if !(text.starts_with("redis://") || text.starts_with("rediss://")) {
                bail!("REDIS_URL (queue.redis_url) must start with redis:// or rediss://");
            }
            Some(url.clone())
        }
        (None, Some(host)) => Some(Secret::new(format!(
            "redis://{host}:{}/0",
            q.redis_port.unwrap_or(6379)
        ))),
        (None, None) => None,
    };
    let claim_idle = Duration::from_millis(q.claim_idle_ms.unwrap_or(10_000));
    if claim_idle < Duration::from_millis(100) {
        bail!("queue.claim_idle_ms must be at least 100 (workers heart-beat a third of it)");
    }
    let worker_concurrency = q.worker_concurrency.unwrap_or(32);
    if worker_concurrency == 0 {
        bail!("queue.worker_concurrency must be at least 1");
    }
    Ok(QueueConfig {
        redis_url,
        prefix: trimmed(&q.prefix).unwrap_or_else(|| "clara".to_owned()),
        claim_idle,
        worker_concurrency,
    })
}

/// The default gateway port, as the system Clara replaces used it.
pub const DEFAULT_GATEWAY_PORT: u16 = 18789;

fn gateway_config(g: &GatewaySettings) -> Result<GatewayConfig> {
    let host = g.host.as_deref().unwrap_or("127.0.0.1").trim();
    let port = g.port.unwrap_or(DEFAULT_GATEWAY_PORT);
    let ip: std::net::IpAddr = match host {
        "localhost" => std::net::Ipv4Addr::LOCALHOST.into(),
        other => other.trim_matches(['[', ']']).parse().with_context(|| {
            format!("CLARA_GATEWAY_HOST (gateway.host) must be an IP address to listen on, got {other:?}")
        })?,
    };
    let secret = Secret::given(g.secret.as_ref()).cloned();
    let config = GatewayConfig {
        addr: std::net::SocketAddr::new(ip, port),
        secret,
    };
    if !config.is_loopback() && config.secret.is_none() {
        bail!(
            "CLARA_GATEWAY_SECRET (gateway.secret) must be set when the gateway listens on {ip}, which other machines can reach"
        );
    }
    Ok(config)
}

fn http_config(
    w: &WebSettings,
    a: &ApiSettings,
    gateway: &GatewayConfig,
) -> Result<clara_gateway::http::HttpConfig> {
    let mut http = clara_gateway::http::HttpConfig::new(gateway.is_loopback());
    let given = |v: &Option<Secret>| Secret::given(v.as_ref()).cloned();
    match (given(&w.password), given(&w.password_hash)) {
        (Some(_), Some(_)) => bail!("set web.password or web.password_hash, not both"),
        (Some(password), None) => {
            http = http
                .with_password(password.expose())
                .context("CLARA_WEB_PASSWORD (web.password)")?;
        }
        (None, Some(hash)) => {
            http = http
                .with_password_hash(hash.expose())
                .context("web.password_hash")?;
        }
        (None, None) => {}
    }
    if let Some(key) = given(&a.key) {
        http = http.with_api_key(key.expose());
    }
    http.require_login = w.require_login.unwrap_or(false);
    if http.require_login && !http.has_password() {
        bail!("web.require_login is on, so web.password (CLARA_WEB_PASSWORD) must be set too");
    }
    if let Some(secure) = w.secure_cookie {
        http.secure_cookie = secure;
    }
    if let Some(hours) = w.login_hours {
        if hours == 0 {
            bail!("web.login_hours must be at least 1");
        }
        http.login_ttl = Duration::from_secs(hours.saturating_mul(3600));
    }
    let mib = |value: Option<usize>, key: &str, default: usize| -> Result<usize> {
        match value {
            Some(0) => bail!("web.{key} must be at least 1"),
            Some(n) => Ok(n.saturating_mul(1024 * 1024)),
            None => Ok(default),
        }
    };
    http.max_file_bytes = mib(w.max_file_mb, "max_file_mb", http.max_file_bytes)?;
    http.max_message_file_bytes = mib(
        w.max_message_files_mb,
        "max_message_files_mb",
        http.max_message_file_bytes,
    )?;
    http.kept_file_bytes = mib(w.kept_files_mb, "kept_files_mb", http.kept_file_bytes)?;
    if let Some(n) = w.kept_files {
        http.kept_files = n.max(1);
    }
    if let Some(bytes) = a.max_body_bytes {
        if bytes < 1024 {
            bail!("api.max_body_bytes must be at least 1024");
        }
        http.max_body_bytes = bytes;
    }
    http.person.name = w
        .name
        .clone()
        .filter(|n| !n.trim().is_empty())
        .or_else(|| env_value("USER"))
        .unwrap_or_else(|| "you".to_owned());
    Ok(http)
}

fn engine_config(c: &ChatSettings) -> Result<EngineConfig> {
    let mut e = EngineConfig::default();
    if let Some(p) = &c.persona {
        e.persona.clone_from(p);
    }
    let base = ChunkerConfig::default();
    e.chunker = ChunkerConfig {
        quiet: c.quiet_ms.map_or(base.quiet, Duration::from_millis),
        quiet_when_complete: c
            .quiet_when_complete_ms
            .map_or(base.quiet_when_complete, Duration::from_millis),
        max_wait: c.max_wait_ms.map_or(base.max_wait, Duration::from_millis),
        ..base
    };
    if e.chunker.quiet_when_complete > e.chunker.quiet {
        e.chunker.quiet_when_complete = e.chunker.quiet;
    }
    if e.chunker.quiet_when_continuing < e.chunker.quiet {
        e.chunker.quiet_when_continuing = e.chunker.quiet;
    }
    if e.chunker.max_wait < e.chunker.quiet {
        bail!(
            "chat.max_wait_ms must be at least chat.quiet_ms ({} ms)",
            e.chunker.quiet.as_millis()
        );
    }
    if let Some(m) = c.session_idle_minutes {
        if m == 0 {
            bail!("chat.session_idle_minutes must be at least 1");
        }
        e.session_idle = Duration::from_secs(m * 60);
    }
    let w = WindowRules::default();
    e.window = WindowRules {
        max_age: c
            .window_hours
            .map_or(w.max_age, |h| Duration::from_secs(h * 3600)),
        min_messages: c.window_min_messages.unwrap_or(w.min_messages),
        max_messages: c.window_max_messages.unwrap_or(w.max_messages),
        token_budget: c.token_budget.unwrap_or(w.token_budget),
    };
    if e.window.max_messages < e.window.min_messages {
        bail!(
            "chat.window_max_messages must be at least chat.window_min_messages ({})",
            e.window.min_messages
        );
    }
    if e.window.token_budget < 256 {
        bail!("chat.token_budget must be at least 256 tokens");
    }
    if let Some(p) = &c.stop_phrases {
        e.stop_phrases = StopPhrases::new(p);
    }
    if let Some(n) = c.max_message_chars {
        if n == 0 {
            bail!("chat.max_message_chars must be at least 1");
        }
        e.max_message_chars = n;
    }
    e.max_reply_tokens = c.max_reply_tokens;
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_configuration_names_only_real_keys() {
        let example = include_str!("../../../clara.example.toml");
        // Uncomment every `# key = value` line holding one key, as a person would;
        // what follows two spaces is the line's note (the environment variable).
        let uncommented: String = example
            .lines()
            .map(|line| match line.strip_prefix("# ") {
                Some(rest) if rest.matches(" = ").count() == 1 => {
                    rest.split("  ").next().unwrap_or(rest).trim().to_owned()
                }
                _ => line.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            uncommented
                .lines()
                .filter(|l| !l.starts_with('#') && l.contains(" = "))
                .count()
                > 30
        );
        if let Err(e) = check_file(&uncommented) {
            panic!("clara.example.toml{e}\n{uncommented}");
        }
        check_file(example).expect("as shipped");
        // Every platform's section is there, so a person finds its keys.
        for platform in platforms::PLATFORMS {
            assert!(
                uncommented.contains(&format!("[{}]", platform.name)),
                "clara.example.toml has no [{}] section",
                platform.name
            );
        }
    }

    #[test]
    fn a_misspelt_key_is_named_with_its_line_or_section() {
        let own = check_file("[chat]\nquiet_msec = 3\n").unwrap_err();
        assert!(
            own.contains("line 2") && own.contains("quiet_msec"),
            "{own}"
        );
        let platform = check_file("[discord]\ntokn = \"t\"\n").unwrap_err();
        assert!(
            platform.contains("[discord]") && platform.contains("tokn"),
            "{platform}"
        );
        let top = check_file("[telegramm]\ntoken = \"1:a\"\n").unwrap_err();
        assert!(top.contains("`telegramm`"), "{top}");
    }

    #[test]
    fn the_queue_takes_a_redis_url_or_a_host_and_never_shows_the_password() {
        let none = queue_config(&QueueSettings::default()).unwrap();
        let missing = none.redis().unwrap_err().to_string();
        assert!(missing.contains("REDIS_URL"), "{missing}");

        let host = queue_config(&QueueSettings {
            redis_host: Some("cache.internal".into()),
            redis_port: Some(6380),
            ..QueueSettings::default()
        })
        .unwrap();
        assert_eq!(host.redis().unwrap().url, "redis://cache.internal:6380/0");

        let url = queue_config(&QueueSettings {
            redis_url: Some("redis://:hunter2@cache/1".into()),
            redis_host: Some("ignored".into()),
            claim_idle_ms: Some(1_500),
            ..QueueSettings::default()
        })
        .unwrap();
        let redis = url.redis().unwrap();
        assert_eq!(redis.url, "redis://:hunter2@cache/1");
        assert_eq!(redis.claim_idle, Duration::from_millis(1_500));
        assert!(!format!("{url:?}").contains("hunter2"));

        let bad = queue_config(&QueueSettings {
            redis_url: Some("cache:6379".into()),
            ..QueueSettings::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("REDIS_URL") && bad.contains("redis://"),
            "{bad}"
        );
        let too_eager = queue_config(&QueueSettings {
            claim_idle_ms: Some(10),
            ..QueueSettings::default()
        })
        .unwrap_err()
        .to_string();
        assert!(too_eager.contains("claim_idle_ms"), "{too_eager}");
    }

    #[test]
    fn errors_lose_the_values_they_quote() {
        assert_eq!(
            without_value(r#"invalid type: string "sk-secret", expected u64"#),
            "invalid type: string, expected u64"
        );
        assert_eq!(without_value("no quotes here"), "no quotes here");
        assert_eq!(without_value(r#"cut "short"#), "cut");
    }

    #[test]
    fn platforms_read_their_sections_with_environment_strings_coerced() {
        // The environment's names arrive as strings through the same overrides `load` uses.
        let config = config::Config::builder()
            .set_override("discord.token", "secret-token")
            .unwrap()
            .set_override("discord.allowed_channels", "7, 8")
            .unwrap()
            .set_override("discord.max_messages", "5")
            .unwrap()
            .build()
            .unwrap();
        let sections = Sections { config };
        let mut names = Vec::new();
        for (_, platform) in platforms::built_in() {
            if let Some(adapter) = (platform.adapter)(&sections).unwrap() {
                names.push(adapter.platform());
            }
        }
        assert_eq!(names, vec!["discord"]);

        let config = config::Config::builder()
            .set_override("discord.token", "secret-token")
            .unwrap()
            .set_override("discord.max_messages", "many")
            .unwrap()
            .build()
            .unwrap();
        let bad = Sections { config }
            .section::<clara_discord::DiscordSettings>("discord")
            .unwrap_err()
            .to_string();
        assert!(
            bad.contains("[discord]") && bad.contains("max_messages"),
            "{bad}"
        );
        assert!(
            !bad.contains("many") && !bad.contains("secret-token"),
            "{bad}"
        );
    }

    #[test]
    fn web_and_api_settings_resolve_with_their_secrets_hashed() {
        let off_loopback = GatewayConfig {
            addr: "0.0.0.0:18789".parse().unwrap(),
            secret: Some("gateway-secret".into()),
        };
        let web = WebSettings {
            password: Some("a long password".into()),
            name: Some("Ann".into()),
            ..WebSettings::default()
        };
        let api = ApiSettings {
            key: Some("sk-clara".into()),
            max_body_bytes: Some(2048),
        };
        let http = http_config(&web, &api, &off_loopback).unwrap();
        assert!(http.login_required() && http.has_password() && http.secure_cookie);
        assert_eq!(http.person.name, "Ann");
        assert_eq!(http.max_body_bytes, 2048);
        let shown = format!("{http:?} {web:?} {api:?}");
        assert!(
            !shown.contains("a long password") && !shown.contains("sk-clara"),
            "{shown}"
        );

        let no_password = WebSettings {
            require_login: Some(true),
            ..WebSettings::default()
        };
        let error = http_config(&no_password, &ApiSettings::default(), &off_loopback).unwrap_err();
        assert!(error.to_string().contains("CLARA_WEB_PASSWORD"), "{error}");
        let bad_hash = WebSettings {
            password_hash: Some("not-a-hash".into()),
            ..WebSettings::default()
        };
        let error = http_config(&bad_hash, &ApiSettings::default(), &off_loopback).unwrap_err();
        assert!(
            format!("{error:#}").contains("web.password_hash"),
            "{error:#}"
        );
    }
}
