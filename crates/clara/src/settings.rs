//! Configuration: `clara.toml`, then `CLARA_*` environment variables, then the
//! environment variable names of the system Clara replaces, then command-line flags.
//!
//! Every problem is reported once, at start, in one sentence naming the key and
//! what was expected.

use crate::memory::{self, MemoryChoice, MemorySettings};
use crate::provider::{self, LlmChoice, LlmSettings};
use anyhow::{Context, Result, bail};
use clara_core::chunker::ChunkerConfig;
use clara_core::context::WindowRules;
use clara_core::stop::StopPhrases;
use clara_runtime::EngineConfig;
use clara_tools::ToolRegistry;
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

/// `[tools]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolSettings {
    /// Rounds of tool calls in one reply before the model must answer (0: no tools).
    pub rounds: Option<usize>,
    /// Seconds one tool call may take.
    pub timeout_secs: Option<u64>,
    /// Characters of a tool's result the model sees.
    pub max_result_chars: Option<usize>,
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
    /// The tools offered.
    pub tools: ToolRegistry,
    /// Long-term memory (checked even when off: the `memory` commands use it).
    pub memory: MemoryChoice,
    /// The file the settings were read from, if any.
    pub file: Option<PathBuf>,
    /// The network face.
    pub gateway: GatewayConfig,
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
    let tools = tool_registry(&s.tools);
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
    Ok(Resolved {
        gateway,
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

fn tool_registry(t: &ToolSettings) -> ToolRegistry {
    let mut tools = ToolRegistry::new(
        Duration::from_secs(t.timeout_secs.unwrap_or(30).max(1)),
        t.max_result_chars.unwrap_or(8_000),
    );
    tools.register(
        clara_tools::builtin::SERVER,
        std::sync::Arc::new(clara_tools::builtin::CurrentTime),
    );
    tools
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
}
