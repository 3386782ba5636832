//! Configuration: `clara.toml`, then `CLARA_*` environment variables, then the
//! environment variable names of the system Clara replaces, then command-line flags.
//!
//! Every problem is reported once, at start, in one sentence naming the key and
//! what was expected.

use anyhow::{Context, Result, bail};
use clara_core::chunker::ChunkerConfig;
use clara_core::context::WindowRules;
use clara_core::stop::StopPhrases;
use clara_llm::{OpenAiCompatibleConfig, RetryPolicy, Secret, Timeouts};
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
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// A `sqlite:` URL or file path; default `<data_dir>/clara.db`.
    pub database_url: Option<String>,
}

/// `[llm]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// Which provider answers: `openai` (any OpenAI-compatible API).
    pub provider: Option<String>,
    /// `[llm.openai]`.
    pub openai: OpenAiSettings,
}

/// `[llm.openai]`.
#[derive(Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OpenAiSettings {
    /// The API root, e.g. `https://api.openai.com/v1`.
    pub base_url: Option<String>,
    /// The API key, if the server needs one.
    pub api_key: Option<String>,
    /// The model to ask.
    pub model: Option<String>,
    /// Seconds to wait for the answer to start.
    pub timeout_secs: Option<u64>,
    /// Attempts for a request that fails with 429 or 5xx.
    pub max_attempts: Option<u32>,
}

impl std::fmt::Debug for OpenAiSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiSettings")
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("model", &self.model)
            .finish_non_exhaustive()
    }
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
    /// The SQLite file.
    pub database: PathBuf,
    /// Engine behaviour.
    pub engine: EngineConfig,
    /// The model, when one is configured.
    pub llm: Option<OpenAiCompatibleConfig>,
    /// The file the settings were read from, if any.
    pub file: Option<PathBuf>,
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
    builder = builder.add_source(
        config::Environment::with_prefix("CLARA")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true),
    );
    for (env, key) in LEGACY_ENV {
        if let Some(value) = env_value(env) {
            builder = builder
                .set_override(*key, value)
                .with_context(|| format!("{env} could not be applied"))?;
        }
    }
    if let (None, Some(key)) = (
        env_value("CUSTOM_OPENAI_API_KEY"),
        env_value("OPENAI_API_KEY"),
    ) {
        builder = builder.set_override("llm.openai.api_key", key)?;
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

/// Environment variable names of the system Clara replaces, and the keys they set.
const LEGACY_ENV: &[(&str, &str)] = &[
    ("LLM_PROVIDER", "llm.provider"),
    ("CUSTOM_OPENAI_BASE_URL", "llm.openai.base_url"),
    ("CUSTOM_OPENAI_API_KEY", "llm.openai.api_key"),
    ("CUSTOM_OPENAI_MODEL", "llm.openai.model"),
    ("DATABASE_URL", "store.database_url"),
];

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
    let database = match s.store.database_url.as_deref() {
        None => data_dir.join("clara.db"),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => bail!(
            "DATABASE_URL (store.database_url) points at PostgreSQL, which this build cannot use yet; unset it to use the embedded SQLite file"
        ),
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
    Ok(Resolved {
        engine: engine_config(&s.chat)?,
        llm: llm_config(&s.llm)?,
        data_dir,
        database,
        file,
    })
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

const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";

fn llm_config(l: &LlmSettings) -> Result<Option<OpenAiCompatibleConfig>> {
    let o = &l.openai;
    let provider = match l
        .provider
        .as_deref()
        .map(str::trim)
        .map(str::to_ascii_lowercase)
    {
        Some(p) => p,
        // A base URL or key alone is enough to know what is meant.
        None if o.base_url.is_some() || o.api_key.is_some() => "openai".to_owned(),
        None => return Ok(None),
    };
    match provider.as_str() {
        "openai" | "custom" | "openai-compatible" => {}
        other => bail!(
            "LLM_PROVIDER (llm.provider) is {other:?}, which this build does not support; use \"openai\" for OpenAI or any OpenAI-compatible server"
        ),
    }
    let base_url = o
        .base_url
        .clone()
        .unwrap_or_else(|| OPENAI_BASE_URL.to_owned());
    let parsed = reqwest_url_ok(&base_url);
    if !parsed {
        bail!(
            "CUSTOM_OPENAI_BASE_URL (llm.openai.base_url) must be an http:// or https:// URL, got {base_url:?}"
        );
    }
    let is_openai = base_url.trim_end_matches('/') == OPENAI_BASE_URL;
    let model = match (&o.model, is_openai) {
        (Some(m), _) if !m.trim().is_empty() => m.trim().to_owned(),
        (_, true) => OPENAI_DEFAULT_MODEL.to_owned(),
        (_, false) => bail!(
            "CUSTOM_OPENAI_MODEL (llm.openai.model) is not set; a custom OpenAI-compatible server needs a model name"
        ),
    };
    if is_openai && o.api_key.is_none() {
        bail!(
            "OPENAI_API_KEY (or CUSTOM_OPENAI_API_KEY / llm.openai.api_key) is not set; OpenAI needs an API key"
        );
    }
    let mut retry = RetryPolicy::default();
    if let Some(n) = o.max_attempts {
        retry.max_attempts = n.max(1);
    }
    let mut timeouts = Timeouts::default();
    if let Some(secs) = o.timeout_secs {
        timeouts.first_byte = Duration::from_secs(secs.max(1));
        timeouts.idle = Duration::from_secs(secs.max(1));
    }
    Ok(Some(OpenAiCompatibleConfig {
        base_url,
        api_key: o.api_key.clone().map(Secret::from),
        model,
        retry,
        timeouts,
        extra_headers: Vec::new(),
    }))
}

fn reqwest_url_ok(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len()
}

/// The sentence shown when no model is configured.
pub const NO_MODEL: &str = "No language model is configured: set LLM_PROVIDER=openai with CUSTOM_OPENAI_BASE_URL and CUSTOM_OPENAI_MODEL for an OpenAI-compatible server (Ollama, llama.cpp, vLLM, OpenRouter…), or OPENAI_API_KEY for OpenAI itself.";
