//! Which model answers: the `[llm]` settings, and the provider built from them.
//!
//! `LLM_PROVIDER` (or `llm.provider`) picks one of `openai` (any OpenAI-compatible
//! server), `openrouter`, `nanogpt`, `anthropic`, `ollama` or `local`. With none
//! configured, Clara answers with the local model, which needs no key.

use anyhow::{Result, bail};
use clara_core::Tier;
use clara_llm::{
    Anthropic, AnthropicConfig, ChatProvider, Ollama, OllamaConfig, OpenAiCompatible,
    OpenAiCompatibleConfig, RetryPolicy, Secret, Timeouts,
};
use clara_runtime::TierModels;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// `[llm]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LlmSettings {
    /// `openai`, `openrouter`, `nanogpt`, `anthropic`, `ollama` or `local`.
    pub provider: Option<String>,
    /// The tier of a message without `!high`/`!mid`/`!low` (`MODEL_TIER`).
    pub default_tier: Option<String>,
    /// Choose the tier from each message (`AUTO_TIER_SELECTION`).
    pub auto_tier: Option<bool>,
    /// `[llm.openai]`: OpenAI or any OpenAI-compatible server (`CUSTOM_OPENAI_*`).
    pub openai: EndpointSettings,
    /// `[llm.openrouter]` (`OPENROUTER_*`).
    pub openrouter: EndpointSettings,
    /// `[llm.nanogpt]` (`NANOGPT_*`).
    pub nanogpt: EndpointSettings,
    /// `[llm.anthropic]` (`ANTHROPIC_*`).
    pub anthropic: EndpointSettings,
    /// `[llm.ollama]` (`LLM_API_URL`, `LLM_MODEL`).
    pub ollama: EndpointSettings,
    /// `[llm.local]`.
    pub local: LocalSettings,
}

/// One API endpoint's settings. Not every provider uses every key.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EndpointSettings {
    /// The API root.
    pub base_url: Option<String>,
    /// The key.
    pub api_key: Option<Secret>,
    /// The model (the `mid` tier's, unless `model_mid` is set).
    pub model: Option<String>,
    /// The model for `!high`.
    pub model_high: Option<String>,
    /// The model for `!mid`.
    pub model_mid: Option<String>,
    /// The model for `!low`.
    pub model_low: Option<String>,
    /// Seconds to wait for the answer to start, and between its parts.
    pub timeout_secs: Option<u64>,
    /// Attempts for a request answered with 429, 5xx or "overloaded".
    pub max_attempts: Option<u32>,
    /// OpenRouter attribution: your site's URL (`HTTP-Referer`).
    pub site_url: Option<String>,
    /// OpenRouter attribution: your app's name (`X-Title`).
    pub app_name: Option<String>,
    /// Anthropic: the answer's maximum length in tokens.
    pub max_tokens: Option<u32>,
    /// Anthropic: cache the stable prompt prefix.
    pub prompt_caching: Option<bool>,
}

/// `[llm.local]`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalSettings {
    /// Where model files are kept (`CLARA_MODELS_DIR`); shared by every data dir.
    pub models_dir: Option<PathBuf>,
    /// CPU threads for generation (default 1).
    pub threads: Option<usize>,
    /// The answer's maximum length in tokens.
    pub max_tokens: Option<u32>,
}

/// The model that answers, resolved from the settings.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "local-model"), allow(dead_code))]
pub enum ModelChoice {
    /// An OpenAI-compatible API (OpenAI, OpenRouter, NanoGPT, custom).
    OpenAi(OpenAiCompatibleConfig),
    /// Anthropic Messages.
    Anthropic(AnthropicConfig),
    /// Ollama's native API.
    Ollama(OllamaConfig),
    /// The in-process model.
    Local {
        /// Where its file is (or will be fetched to).
        models_dir: PathBuf,
        /// CPU threads.
        threads: usize,
        /// Longest answer.
        max_tokens: u32,
        /// Whether it was chosen because nothing else was configured.
        by_default: bool,
    },
}

/// The model choice, the tier models, and the tier rules.
#[derive(Debug)]
pub struct LlmChoice {
    /// Which provider.
    pub model: ModelChoice,
    /// Which model per tier.
    pub tiers: TierModels,
    /// The default tier.
    pub default_tier: Tier,
    /// Automatic tier choice.
    pub auto_tier: bool,
}

const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
const OPENROUTER_DEFAULT_MODEL: &str = "openai/gpt-4o-mini";
const ANTHROPIC_DEFAULT_MODEL: &str = "claude-sonnet-4-5";

/// Resolves `[llm]`, naming the key of anything missing or wrong.
pub fn resolve(l: &LlmSettings) -> Result<LlmChoice> {
    let default_tier = match l.default_tier.as_deref() {
        None => Tier::Mid,
        Some(t) => Tier::parse(t).ok_or_else(|| {
            anyhow::anyhow!("MODEL_TIER (llm.default_tier) must be high, mid or low, got {t:?}")
        })?,
    };
    let provider = match l.provider.as_deref().map(|p| p.trim().to_ascii_lowercase()) {
        Some(p) if !p.is_empty() => p,
        // Settings for a custom server alone say what is meant.
        _ if l.openai.base_url.is_some() || l.openai.api_key.is_some() => "openai".to_owned(),
        _ => "local".to_owned(),
    };
    let by_default = l.provider.as_deref().is_none_or(|p| p.trim().is_empty());
    let (model, endpoint) = match provider.as_str() {
        "openai" | "custom" | "openai-compatible" => {
            (ModelChoice::OpenAi(openai(&l.openai)?), Some(&l.openai))
        }
        "openrouter" => (
            ModelChoice::OpenAi(openrouter(&l.openrouter)?),
            Some(&l.openrouter),
        ),
        "nanogpt" => (ModelChoice::OpenAi(nanogpt(&l.nanogpt)?), Some(&l.nanogpt)),
        "anthropic" | "claude" => (
            ModelChoice::Anthropic(anthropic(&l.anthropic)?),
            Some(&l.anthropic),
        ),
        "ollama" => (ModelChoice::Ollama(ollama(&l.ollama)?), Some(&l.ollama)),
        "local" => (
            ModelChoice::Local {
                models_dir: l
                    .local
                    .models_dir
                    .clone()
                    .unwrap_or_else(default_models_dir),
                threads: l.local.threads.unwrap_or(1).max(1),
                max_tokens: l.local.max_tokens.unwrap_or(256).max(1),
                by_default,
            },
            None,
        ),
        other => bail!(
            "LLM_PROVIDER (llm.provider) is {other:?}; expected openai, openrouter, nanogpt, anthropic, ollama or local"
        ),
    };
    let tiers = endpoint.map_or_else(TierModels::default, |e| TierModels {
        high: e.model_high.clone(),
        mid: e.model_mid.clone(),
        low: e.model_low.clone(),
    });
    Ok(LlmChoice {
        model,
        tiers,
        default_tier,
        auto_tier: l.auto_tier.unwrap_or(false),
    })
}

/// Builds the provider. The local model is fetched (with pip) when missing.
pub fn build(choice: ModelChoice) -> Result<Arc<dyn ChatProvider>> {
    Ok(match choice {
        ModelChoice::OpenAi(c) => Arc::new(OpenAiCompatible::new(c)?),
        ModelChoice::Anthropic(c) => Arc::new(Anthropic::new(c)?),
        ModelChoice::Ollama(c) => Arc::new(Ollama::new(c)?),
        #[cfg(feature = "local-model")]
        ModelChoice::Local {
            models_dir,
            threads,
            max_tokens,
            ..
        } => {
            let present = models_dir.join(clara_llm::local::SMOLLM2_FILE).is_file();
            if !present {
                eprintln!(
                    "clara: fetching the local model (SmolLM2-135M, 98 MB) into {} …",
                    models_dir.display()
                );
            }
            let path = clara_llm::local::ensure_smollm2(&models_dir)?;
            let config = clara_llm::local::LocalModelConfig {
                threads,
                max_tokens,
                ..clara_llm::local::LocalModelConfig::new(path)
            };
            Arc::new(clara_llm::local::LocalModel::load(config)?)
        }
        #[cfg(not(feature = "local-model"))]
        ModelChoice::Local { .. } => bail!(
            "this Clara was built without the local model (feature local-model); set LLM_PROVIDER to a model API"
        ),
    })
}

#[cfg(feature = "local-model")]
fn default_models_dir() -> PathBuf {
    clara_llm::local::default_models_dir()
}

/// Where model files would go; without the local model nothing is kept there.
#[cfg(not(feature = "local-model"))]
fn default_models_dir() -> PathBuf {
    PathBuf::from("models")
}

fn retry_and_timeouts(e: &EndpointSettings) -> (RetryPolicy, Timeouts) {
    let mut retry = RetryPolicy::default();
    if let Some(n) = e.max_attempts {
        retry.max_attempts = n.max(1);
    }
    let mut timeouts = Timeouts::default();
    if let Some(secs) = e.timeout_secs {
        timeouts.first_byte = Duration::from_secs(secs.max(1));
        timeouts.idle = Duration::from_secs(secs.max(1));
    }
    (retry, timeouts)
}

fn check_url(key: &str, url: &str) -> Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len()
    {
        bail!("{key} must be an http:// or https:// URL, got {url:?}");
    }
    Ok(())
}

/// Replaces a provider's default base URL with the configured one, if any.
fn override_url(base_url: &mut String, e: &EndpointSettings, key: &str) -> Result<()> {
    if let Some(url) = &e.base_url {
        check_url(key, url)?;
        base_url.clone_from(url);
    }
    Ok(())
}

fn model_or(e: &EndpointSettings, default: Option<&str>, key: &str, why: &str) -> Result<String> {
    match (
        e.model.as_deref().map(str::trim).filter(|m| !m.is_empty()),
        default,
    ) {
        (Some(m), _) => Ok(m.to_owned()),
        (None, Some(d)) => Ok(d.to_owned()),
        (None, None) => bail!("{key} is not set; {why}"),
    }
}

fn key_or(e: &EndpointSettings, key: &str, who: &str) -> Result<Secret> {
    match Secret::given(e.api_key.as_ref()) {
        Some(k) => Ok(k.clone()),
        None => bail!("{key} is not set; {who} needs an API key"),
    }
}

fn openai(e: &EndpointSettings) -> Result<OpenAiCompatibleConfig> {
    let base_url = e
        .base_url
        .clone()
        .unwrap_or_else(|| OpenAiCompatibleConfig::OPENAI_BASE_URL.to_owned());
    check_url("CUSTOM_OPENAI_BASE_URL (llm.openai.base_url)", &base_url)?;
    let is_openai = base_url.trim_end_matches('/') == OpenAiCompatibleConfig::OPENAI_BASE_URL;
    let model = model_or(
        e,
        is_openai.then_some(OPENAI_DEFAULT_MODEL),
        "CUSTOM_OPENAI_MODEL (llm.openai.model)",
        "a custom OpenAI-compatible server needs a model name",
    )?;
    if is_openai && e.api_key.is_none() {
        bail!(
            "OPENAI_API_KEY (or CUSTOM_OPENAI_API_KEY / llm.openai.api_key) is not set; OpenAI needs an API key"
        );
    }
    let (retry, timeouts) = retry_and_timeouts(e);
    Ok(OpenAiCompatibleConfig {
        api_key: e.api_key.clone(),
        retry,
        timeouts,
        ..OpenAiCompatibleConfig::new(base_url, model)
    })
}

fn openrouter(e: &EndpointSettings) -> Result<OpenAiCompatibleConfig> {
    let key = key_or(
        e,
        "OPENROUTER_API_KEY (llm.openrouter.api_key)",
        "OpenRouter",
    )?;
    let model = model_or(e, Some(OPENROUTER_DEFAULT_MODEL), "", "")?;
    let app = e.app_name.clone().or_else(|| Some("Clara".to_owned()));
    let mut c = OpenAiCompatibleConfig::openrouter(key, model, e.site_url.clone(), app);
    (c.retry, c.timeouts) = retry_and_timeouts(e);
    override_url(&mut c.base_url, e, "llm.openrouter.base_url")?;
    Ok(c)
}

fn nanogpt(e: &EndpointSettings) -> Result<OpenAiCompatibleConfig> {
    let key = key_or(e, "NANOGPT_API_KEY (llm.nanogpt.api_key)", "NanoGPT")?;
    let model = model_or(
        e,
        None,
        "NANOGPT_MODEL (llm.nanogpt.model)",
        "NanoGPT needs a model name",
    )?;
    let mut c = OpenAiCompatibleConfig::nanogpt(key, model);
    (c.retry, c.timeouts) = retry_and_timeouts(e);
    override_url(&mut c.base_url, e, "llm.nanogpt.base_url")?;
    Ok(c)
}

fn anthropic(e: &EndpointSettings) -> Result<AnthropicConfig> {
    let key = key_or(e, "ANTHROPIC_API_KEY (llm.anthropic.api_key)", "Anthropic")?;
    let model = model_or(e, Some(ANTHROPIC_DEFAULT_MODEL), "", "")?;
    let mut c = AnthropicConfig::new(key, model);
    (c.retry, c.timeouts) = retry_and_timeouts(e);
    override_url(
        &mut c.base_url,
        e,
        "ANTHROPIC_BASE_URL (llm.anthropic.base_url)",
    )?;
    if let Some(n) = e.max_tokens {
        c.max_tokens = n.max(1);
    }
    if let Some(p) = e.prompt_caching {
        c.prompt_caching = p;
    }
    Ok(c)
}

fn ollama(e: &EndpointSettings) -> Result<OllamaConfig> {
    let model = model_or(
        e,
        None,
        "LLM_MODEL (llm.ollama.model)",
        "Ollama needs a model name, e.g. llama3.2",
    )?;
    let mut c = OllamaConfig::new(model);
    (c.retry, c.timeouts) = retry_and_timeouts(e);
    override_url(&mut c.base_url, e, "LLM_API_URL (llm.ollama.base_url)")?;
    Ok(c)
}
