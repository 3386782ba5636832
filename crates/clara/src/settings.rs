//! Configuration: `clara.toml`, then `CLARA_*` environment variables, then the
//! environment variable names of the system Clara replaces, then command-line flags.
//!
//! Every problem is reported once, at start, in one sentence naming the key and
//! what was expected.

use crate::memory::{self, MemoryChoice, MemorySettings};
use crate::provider::{self, LlmChoice, LlmSettings};
use crate::tools::ToolSettings;
use anyhow::{Context, Result, bail};
use clara_core::chunker::ChunkerConfig;
use clara_core::context::WindowRules;
use clara_core::stop::StopPhrases;
use clara_runtime::EngineConfig;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Everything `clara.toml` may say. Unknown keys in the file are an error (a typo
/// must not silently fall back to a default).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
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
    /// The Telegram adapter.
    pub telegram: TelegramSettings,
    /// The Discord adapter.
    pub discord: DiscordSettings,
    /// The distributed deployment's queue (`clara gateway`, `clara worker`).
    pub queue: QueueSettings,
}

/// `[queue]`: Redis, for `clara gateway` and `clara worker`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueueSettings {
    /// `redis://[:password@]host:port/db` (`REDIS_URL`).
    pub redis_url: Option<String>,
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

impl std::fmt::Debug for QueueSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueSettings")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[redacted]"))
            .field("redis_host", &self.redis_host)
            .field("redis_port", &self.redis_port)
            .field("prefix", &self.prefix)
            .field("claim_idle_ms", &self.claim_idle_ms)
            .field("worker_concurrency", &self.worker_concurrency)
            .finish()
    }
}

/// The queue's resolved settings.
#[derive(Clone)]
pub struct QueueConfig {
    /// Where Redis is, when configured.
    pub redis_url: Option<String>,
    /// Key prefix.
    pub prefix: String,
    /// When a silent worker's thought is taken over.
    pub claim_idle: Duration,
    /// Thoughts one worker answers at once.
    pub worker_concurrency: usize,
}

impl std::fmt::Debug for QueueConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueConfig")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "[redacted]"))
            .field("prefix", &self.prefix)
            .field("claim_idle", &self.claim_idle)
            .field("worker_concurrency", &self.worker_concurrency)
            .finish()
    }
}

impl QueueConfig {
    /// The Redis settings, or one sentence saying what is missing.
    pub fn redis(&self) -> Result<clara_runtime::queue::redis::RedisConfig> {
        let Some(url) = &self.redis_url else {
            bail!(
                "REDIS_URL (queue.redis_url) or REDIS_HOST must be set: the gateway and its workers meet in Redis"
            );
        };
        let mut config = clara_runtime::queue::redis::RedisConfig::new(url.clone());
        config.prefix.clone_from(&self.prefix);
        config.claim_idle = self.claim_idle;
        Ok(config)
    }
}

/// `[web]`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSettings {
    /// The name Clara calls the web page's person (default: $USER).
    pub name: Option<String>,
    /// The operator's password, asked off loopback; hashed with Argon2 at start.
    pub password: Option<String>,
    /// The password's Argon2 hash instead (`clara hash-password` prints one).
    pub password_hash: Option<String>,
    /// Ask for the password on loopback too.
    pub require_login: Option<bool>,
    /// Send the login cookie over HTTPS only (default: on off loopback).
    pub secure_cookie: Option<bool>,
    /// Hours a login lasts.
    pub login_hours: Option<u64>,
}

impl std::fmt::Debug for WebSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("WebSettings")
            .field("name", &self.name)
            .field("password", &redacted(&self.password))
            .field("password_hash", &redacted(&self.password_hash))
            .field("require_login", &self.require_login)
            .field("secure_cookie", &self.secure_cookie)
            .field("login_hours", &self.login_hours)
            .finish()
    }
}

/// `[api]`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// The key `/v1/*` requests present as `Authorization: Bearer <key>`;
    /// required off loopback.
    pub key: Option<String>,
    /// The largest `/v1/chat/completions` body, in bytes.
    pub max_body_bytes: Option<usize>,
}

impl std::fmt::Debug for ApiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("key", &self.key.as_ref().map(|_| "[redacted]"))
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

/// `[gateway]`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewaySettings {
    /// The address to listen on (default 127.0.0.1).
    pub host: Option<String>,
    /// The port (default 18789).
    pub port: Option<u16>,
    /// The secret out-of-process adapters present; required off loopback.
    pub secret: Option<String>,
}

impl std::fmt::Debug for GatewaySettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewaySettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

/// `[telegram]`: the adapter runs when the token is set.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelegramSettings {
    /// The bot token from @BotFather.
    pub token: Option<String>,
    /// The Bot API root (default `https://api.telegram.org`).
    pub api_url: Option<String>,
    /// `edits` (one message grown by edits, the default) or `parts`.
    pub delivery: Option<String>,
    /// The least time between two edits of a reply, in milliseconds.
    pub edit_cooldown_ms: Option<u64>,
    /// Seconds Telegram may hold one long poll.
    pub poll_timeout_secs: Option<u64>,
}

impl std::fmt::Debug for TelegramSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelegramSettings")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("api_url", &self.api_url)
            .field("delivery", &self.delivery)
            .field("edit_cooldown_ms", &self.edit_cooldown_ms)
            .field("poll_timeout_secs", &self.poll_timeout_secs)
            .finish()
    }
}

/// `[discord]`: the adapter runs when the token is set.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordSettings {
    /// The bot token from the Discord developer portal.
    pub token: Option<String>,
    /// Server (guild) ids Clara answers in; empty: every server.
    pub allowed_servers: Option<TextOrList>,
    /// Channel ids Clara answers in; empty: every channel.
    pub allowed_channels: Option<TextOrList>,
    /// Messages of a reply chain fetched as context (default 25).
    pub max_messages: Option<usize>,
    /// Extra phrases that stop Clara's reply on Discord.
    pub stop_phrases: Option<TextOrList>,
    /// The REST root (default `https://discord.com/api/v10`).
    pub api_url: Option<String>,
    /// The gateway URL (default `wss://gateway.discord.gg`).
    pub gateway_url: Option<String>,
}

impl std::fmt::Debug for DiscordSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DiscordSettings")
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .field("allowed_servers", &self.allowed_servers)
            .field("allowed_channels", &self.allowed_channels)
            .field("max_messages", &self.max_messages)
            .field("stop_phrases", &self.stop_phrases)
            .field("api_url", &self.api_url)
            .field("gateway_url", &self.gateway_url)
            .finish()
    }
}

/// A list given either as TOML array or as one comma-separated string (as the
/// environment variables give it).
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum TextOrList {
    /// `"a, b"`.
    Text(String),
    /// `["a", "b"]` or `[1, 2]`.
    List(Vec<TextOrNumber>),
}

/// One item of a [`TextOrList`].
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum TextOrNumber {
    /// A string.
    Text(String),
    /// A number (a Discord id written without quotes).
    Number(u64),
}

impl TextOrList {
    /// The list as one comma-separated string.
    fn joined(&self) -> String {
        match self {
            Self::Text(t) => t.clone(),
            Self::List(items) => items
                .iter()
                .map(|i| match i {
                    TextOrNumber::Text(t) => t.clone(),
                    TextOrNumber::Number(n) => n.to_string(),
                })
                .collect::<Vec<_>>()
                .join(","),
        }
    }
}

/// The gateway's resolved settings.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Where it listens.
    pub addr: std::net::SocketAddr,
    /// The adapters' shared secret, if set.
    pub secret: Option<String>,
}

impl GatewayConfig {
    /// Whether the address is reachable only from this machine.
    pub fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("addr", &self.addr)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .finish()
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
    /// The Telegram adapter, when a token is configured.
    pub telegram: Option<clara_adapters::telegram::TelegramConfig>,
    /// The Discord adapter, when a token is configured.
    pub discord: Option<clara_adapters::discord::DiscordConfig>,
    /// The distributed deployment's queue.
    pub queue: QueueConfig,
}

/// Reads the configuration file and the environment.
pub fn load(sources: &Sources<'_>) -> Result<Resolved> {
    let file = find_config_file(sources.config_file)?;
    let mut builder = config::Config::builder();
    if let Some(path) = &file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        // Parse strictly first, so a misspelt key is reported by name.
        toml::from_str::<Settings>(&text).map_err(|e| file_error(path, &text, &e))?;
        builder = builder.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    for (key, value) in environment() {
        builder = builder
            .set_override(&key, value)
            .with_context(|| format!("{key} could not be applied"))?;
    }
    let settings: Settings = builder
        .build()
        .and_then(config::Config::try_deserialize)
        .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))?;
    resolve(settings, sources, file)
}

/// One sentence for a bad file: where, the offending line (which names the key),
/// and what was expected.
fn file_error(path: &Path, text: &str, error: &toml::de::Error) -> anyhow::Error {
    let Some(span) = error.span() else {
        return anyhow::anyhow!("{}: {}", path.display(), error.message());
    };
    let line_no = text[..span.start.min(text.len())].matches('\n').count() + 1;
    let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
    anyhow::anyhow!(
        "{} line {line_no} (`{line}`): {}",
        path.display(),
        error.message()
    )
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
    ("TG_BOT_TOKEN", "telegram.token"),
    ("TELEGRAM_API_URL", "telegram.api_url"),
    ("TELEGRAM_DELIVERY", "telegram.delivery"),
    ("DISCORD_BOT_TOKEN", "discord.token"),
    ("DISCORD_ALLOWED_SERVERS", "discord.allowed_servers"),
    ("DISCORD_ALLOWED_CHANNELS", "discord.allowed_channels"),
    ("DISCORD_MAX_MESSAGES", "discord.max_messages"),
    ("DISCORD_STOP_PHRASES", "discord.stop_phrases"),
    ("DISCORD_API_URL", "discord.api_url"),
    ("DISCORD_GATEWAY_URL", "discord.gateway_url"),
    ("REDIS_URL", "queue.redis_url"),
    ("REDIS_HOST", "queue.redis_host"),
    ("REDIS_PORT", "queue.redis_port"),
];

/// The overrides the environment makes, in order of increasing precedence: the
/// names above, then `CLARA_<SECTION>__<KEY>` (e.g. `CLARA_CHAT__QUIET_MS`).
///
/// Only these are read: an unrelated `CLARA_*` variable is not a setting.
fn environment() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = ENV_KEYS
        .iter()
        .filter_map(|(env, key)| env_value(env).map(|v| ((*key).to_owned(), v)))
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

fn resolve(s: Settings, sources: &Sources<'_>, file: Option<PathBuf>) -> Result<Resolved> {
    let data_dir = match (sources.data_dir, &s.data_dir) {
        (Some(d), _) => d.to_owned(),
        (None, Some(d)) => d.clone(),
        (None, None) => default_data_dir()?,
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
    let tools = s.tools;
    let memory = memory::resolve(
        &s.memory,
        &memory::MemoryContext {
            llm_settings: &s.llm,
            llm: llm.as_ref().ok(),
            default_models_dir: memory::default_models_dir(),
            openai_api_key: env_value("OPENAI_API_KEY"),
            prompt_tokens: engine.window.token_budget,
        },
    )?;
    let gateway = gateway_config(&s.gateway)?;
    let http = http_config(&s.web, &s.api, &gateway)?;
    let telegram = telegram_config(&s.telegram)?;
    let discord = discord_config(&s.discord)?;
    let queue = queue_config(&s.queue)?;
    Ok(Resolved {
        queue,
        discord,
        gateway,
        http,
        telegram,
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
    let redis_url = match (trimmed(&q.redis_url), trimmed(&q.redis_host)) {
        (Some(url), _) => {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                bail!("REDIS_URL (queue.redis_url) must start with redis:// or rediss://");
            }
            Some(url)
        }
        (None, Some(host)) => Some(format!("redis://{host}:{}/0", q.redis_port.unwrap_or(6379))),
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
    let secret = g.secret.clone().filter(|s| !s.trim().is_empty());
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

fn telegram_config(
    t: &TelegramSettings,
) -> Result<Option<clara_adapters::telegram::TelegramConfig>> {
    use clara_adapters::telegram::{Telegram, TelegramConfig, TelegramDelivery};
    let Some(token) = t.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut config = TelegramConfig::new(token);
    if let Some(url) = t
        .api_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        url.clone_into(&mut config.api_url);
    }
    if let Some(name) = &t.delivery {
        config.delivery = TelegramDelivery::parse(name).with_context(|| {
            format!(
                "TELEGRAM_DELIVERY (telegram.delivery) must be `edits` or `parts`, got {name:?}"
            )
        })?;
    }
    if let (Some(ms), TelegramDelivery::Edits { cooldown }) =
        (t.edit_cooldown_ms, &mut config.delivery)
    {
        *cooldown = Duration::from_millis(ms);
    }
    if let Some(secs) = t.poll_timeout_secs {
        if !(1..=50).contains(&secs) {
            bail!(
                "telegram.poll_timeout_secs must be between 1 and 50 (how long Telegram holds a long poll), got {secs}"
            );
        }
        config.poll_timeout = Duration::from_secs(secs);
    }
    // The token's shape and the URL are checked now, so a typo stops start-up
    // with the key named (the errors name TG_BOT_TOKEN / TELEGRAM_API_URL).
    Telegram::new(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(config))
}

fn discord_config(d: &DiscordSettings) -> Result<Option<clara_adapters::discord::DiscordConfig>> {
    use clara_adapters::discord::{Discord, DiscordConfig, parse_ids, parse_phrases};
    let Some(token) = d.token.as_deref().map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    let mut config = DiscordConfig::new(token);
    let ids = |what: &str, list: &Option<TextOrList>| -> Result<Vec<u64>> {
        match list {
            Some(list) => parse_ids(what, &list.joined()).map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(Vec::new()),
        }
    };
    config.allowed_servers = ids(
        "DISCORD_ALLOWED_SERVERS (discord.allowed_servers)",
        &d.allowed_servers,
    )?;
    config.allowed_channels = ids(
        "DISCORD_ALLOWED_CHANNELS (discord.allowed_channels)",
        &d.allowed_channels,
    )?;
    if let Some(n) = d.max_messages {
        config.max_messages = n;
    }
    if let Some(phrases) = &d.stop_phrases {
        config.stop_phrases = parse_phrases(&phrases.joined());
    }
    if let Some(url) = d
        .api_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        url.clone_into(&mut config.api_url);
    }
    if let Some(url) = d
        .gateway_url
        .as_deref()
        .map(str::trim)
        .filter(|u| !u.is_empty())
    {
        url.clone_into(&mut config.gateway_url);
    }
    // Checked now, so a typo stops start-up with the key named.
    Discord::new(config.clone()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(config))
}

fn http_config(
    w: &WebSettings,
    a: &ApiSettings,
    gateway: &GatewayConfig,
) -> Result<clara_gateway::http::HttpConfig> {
    let mut http = clara_gateway::http::HttpConfig::new(gateway.is_loopback());
    let given = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
    match (given(&w.password), given(&w.password_hash)) {
        (Some(_), Some(_)) => bail!("set web.password or web.password_hash, not both"),
        (Some(password), None) => {
            http = http
                .with_password(&password)
                .context("CLARA_WEB_PASSWORD (web.password)")?;
        }
        (None, Some(hash)) => {
            http = http
                .with_password_hash(&hash)
                .context("web.password_hash")?;
        }
        (None, None) => {}
    }
    if let Some(key) = given(&a.key) {
        http = http.with_api_key(&key);
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
    if let Some(bytes) = a.max_body_bytes {
        if bytes < 1024 {
            bail!("api.max_body_bytes must be at least 1024");
        }
        http.max_body_bytes = bytes;
    }
    http.person.name = given(&w.name)
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
        if let Err(e) = toml::from_str::<Settings>(&uncommented) {
            panic!("clara.example.toml: {e}\n{uncommented}");
        }
        toml::from_str::<Settings>(example).expect("as shipped");
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
    fn discord_lists_come_as_arrays_or_as_comma_separated_environment_values() {
        let file: Settings = toml::from_str(
            "[discord]\ntoken = \"secret-token\"\nallowed_servers = [\"123\", 456]\nstop_phrases = [\"hush now\"]\n",
        )
        .unwrap();
        let d = discord_config(&file.discord).unwrap().unwrap();
        assert_eq!(d.allowed_servers, vec![123, 456]);
        assert_eq!(d.stop_phrases, vec!["hush now"]);
        assert!(!format!("{:?}", file.discord).contains("secret-token"));

        // The environment's names arrive as strings through the same overrides `load` uses.
        let env: Settings = config::Config::builder()
            .set_override("discord.token", "secret-token")
            .unwrap()
            .set_override("discord.allowed_channels", "7, 8")
            .unwrap()
            .set_override("discord.max_messages", "5")
            .unwrap()
            .set_override("discord.stop_phrases", "hush now, enough")
            .unwrap()
            .set_override("discord.api_url", "http://127.0.0.1:9/api")
            .unwrap()
            .build()
            .and_then(config::Config::try_deserialize)
            .unwrap();
        let d = discord_config(&env.discord).unwrap().unwrap();
        assert_eq!(d.allowed_channels, vec![7, 8]);
        assert_eq!(d.max_messages, 5);
        assert_eq!(d.stop_phrases, vec!["hush now", "enough"]);
        assert_eq!(d.api_url, "http://127.0.0.1:9/api");

        let bad: Settings =
            toml::from_str("[discord]\ntoken = \"t\"\nallowed_channels = \"general\"\n").unwrap();
        let err = discord_config(&bad.discord).unwrap_err().to_string();
        assert!(err.contains("DISCORD_ALLOWED_CHANNELS"), "{err}");
        let none: Settings = toml::from_str("[discord]\n").unwrap();
        assert!(discord_config(&none.discord).unwrap().is_none());
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
